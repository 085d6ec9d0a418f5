//! KZG parameters (the structured reference string).
//!
//! Development parameters are derived from a public seed: anyone can compute
//! the toxic waste and forge proofs, so they are labelled insecure everywhere
//! they surface. Production uses a ceremony file in halo2's `ParamsKZG` raw
//! format, pinned by its SHA-256.
//!
//! Every loaded file is checked to be a KZG setup (the G1 points are
//! successive powers of the secret that `s·G2` holds) and, unless it is
//! explicitly the development SRS, not to have the development secret: the
//! development setup regenerated at another size hashes differently but has
//! the same secret (halo2 draws it first from the seeded generator, whatever
//! `k`), so its SHA-256 alone does not recognise it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use halo2_axiom::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Prepared};
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::halo2curves::group::prime::PrimeCurveAffine;
use halo2_axiom::halo2curves::group::{Curve, Group};
use halo2_axiom::halo2curves::pairing::{MillerLoopResult, MultiMillerLoop};
use halo2_axiom::poly::commitment::{Params, ParamsProver};
use halo2_axiom::poly::kzg::commitment::ParamsKZG;
use halo2_axiom::SerdeFormat;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::circuit::layout::K;
use crate::error::KeyError;
use crate::statement::Digest32;

/// The seed of the development SRS. Public, hence insecure.
pub const DEV_SRS_SEED: &str = "fabstir-zk insecure development SRS v1";

/// Largest `k` accepted in a parameters file (bounds the allocation).
pub const MAX_SRS_K: u32 = 28;

/// How far the parameters can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SrsTrust {
    /// Derived from a public seed: proofs can be forged. Development only.
    InsecureDev,
    /// Loaded from a ceremony file pinned by SHA-256.
    Ceremony,
}

impl fmt::Display for SrsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InsecureDev => "insecure-dev",
            Self::Ceremony => "ceremony",
        })
    }
}

/// KZG parameters sized for the circuit, with their provenance.
#[derive(Clone)]
pub struct Srs {
    params: ParamsKZG<Bn256>,
    trust: SrsTrust,
    /// SHA-256 of the file these parameters came from (for a ceremony file,
    /// the file as pinned, before downsizing).
    source_sha256: Digest32,
}

impl fmt::Debug for Srs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Srs")
            .field("k", &self.params.k())
            .field("trust", &self.trust)
            .finish()
    }
}

/// Size in bytes of a raw-format parameters file for `k`.
fn raw_file_len(k: u32) -> u64 {
    4 + 2 * (1u64 << k) * 64 + 2 * 128
}

impl Srs {
    /// The insecure development parameters, derived from [`DEV_SRS_SEED`].
    pub fn insecure_dev() -> Self {
        static DEV: std::sync::OnceLock<Srs> = std::sync::OnceLock::new();
        DEV.get_or_init(|| {
            let params = ParamsKZG::<Bn256>::setup(K, dev_rng());
            let source_sha256 = Digest32::sha256(&raw_bytes(&params));
            Self {
                params,
                trust: SrsTrust::InsecureDev,
                source_sha256,
            }
        })
        .clone()
    }

    /// The insecure development parameters at `2^k` rows (the batch
    /// circuit's sizes need more than the single circuit's 2^7): the same
    /// setup as [`Srs::insecure_dev`] (the same secret, whatever `k`), built
    /// once per `k`. `k` is capped at [`MAX_SRS_K`].
    pub fn insecure_dev_at(k: u32) -> Result<Self, KeyError> {
        if k == K {
            return Ok(Self::insecure_dev());
        }
        Ok(Self::insecure_dev_shared_at(k)?.as_ref().clone())
    }

    /// [`Srs::insecure_dev_at`] shared: one `Arc` per `k` for the process,
    /// so that keys derived for many batch sizes hold one copy of each
    /// setup (at most one per `k` up to [`MAX_SRS_K`]).
    pub fn insecure_dev_shared_at(k: u32) -> Result<Arc<Self>, KeyError> {
        use std::collections::BTreeMap;
        use std::sync::Mutex;
        if k == 0 || k > MAX_SRS_K {
            return Err(KeyError::SrsTooSmall {
                found: MAX_SRS_K,
                needed: k,
            });
        }
        static SHARED: Mutex<BTreeMap<u32, Arc<Srs>>> = Mutex::new(BTreeMap::new());
        let mut cache = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let srs = cache.entry(k).or_insert_with(|| {
            if k == K {
                return Arc::new(Self::insecure_dev());
            }
            let params = ParamsKZG::<Bn256>::setup(k, dev_rng());
            let source_sha256 = Digest32::sha256(&raw_bytes(&params));
            Arc::new(Self {
                params,
                trust: SrsTrust::InsecureDev,
                source_sha256,
            })
        });
        Ok(Arc::clone(srs))
    }

    /// log2 of the number of rows these parameters support.
    pub fn k(&self) -> u32 {
        self.params.k()
    }

    /// These parameters cut down to `2^k` rows (the first `2^k` powers of
    /// the same secret), for a circuit smaller than the SRS.
    pub fn downsized(&self, k: u32) -> Result<Self, KeyError> {
        if k > self.k() {
            return Err(KeyError::SrsTooSmall {
                found: self.k(),
                needed: k,
            });
        }
        let mut params = self.params.clone();
        if k < self.k() {
            params.downsize(k);
        }
        Ok(Self {
            params,
            trust: self.trust,
            source_sha256: self.source_sha256,
        })
    }

    /// Loads a ceremony parameters file (halo2 `ParamsKZG`, raw format) whose
    /// SHA-256 must equal `pin`, and downsizes it to the circuit's size.
    ///
    /// Refused as well: a file with the development SRS's secret (the
    /// development setup at any size), and a file whose points are not a KZG
    /// setup: `s·G2` not holding the secret of `g[1]`, or G1 points that are
    /// not successive powers of one secret.
    pub fn load_ceremony(path: &Path, pin: &Digest32) -> Result<Self, KeyError> {
        Self::load_ceremony_at(path, pin, K)
    }

    /// [`Srs::load_ceremony`], downsized to `2^k` rows instead of the
    /// single circuit's (a batch circuit's size); the file must have at
    /// least that many.
    pub fn load_ceremony_at(path: &Path, pin: &Digest32, k: u32) -> Result<Self, KeyError> {
        let file = read_params_file(path, k)?;
        if file.sha256 != *pin {
            return Err(KeyError::SrsPin {
                path: path.to_path_buf(),
                expected: pin.to_string(),
                found: file.sha256.to_string(),
            });
        }
        if file.k < k {
            return Err(KeyError::SrsTooSmall {
                found: file.k,
                needed: k,
            });
        }
        let params = parse_params(path, &file.raw, k)?;
        // The development parameters are public: they are never a ceremony
        // SRS, whatever size they were generated at.
        if has_development_secret(&params) {
            return Err(KeyError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "is the public insecure development SRS, not a ceremony SRS \
                     (this file has k = {}, but its secret is the development seed's)",
                    file.k
                ),
            });
        }
        check_setup(path, &params)?;
        let found = file.sha256;
        Ok(Self {
            params,
            trust: SrsTrust::Ceremony,
            source_sha256: found,
        })
    }

    /// Loads parameters stored by [`Srs::write`] in a key directory, checking
    /// that they hash to `expected` (the parameters actually used) and
    /// restoring their recorded provenance.
    pub fn load_stored(
        path: &Path,
        expected: &Digest32,
        trust: SrsTrust,
        source_sha256: Digest32,
    ) -> Result<Self, KeyError> {
        let file = read_params_file(path, K)?;
        if file.sha256 != *expected {
            return Err(KeyError::SrsPin {
                path: path.to_path_buf(),
                expected: expected.to_string(),
                found: file.sha256.to_string(),
            });
        }
        if file.k != K {
            return Err(KeyError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("stored SRS must have k = {K}"),
            });
        }
        let params = parse_params(path, &file.raw, K)?;
        // The development parameters are public: whatever a manifest says,
        // they are never reported as a ceremony SRS.
        if trust != SrsTrust::InsecureDev && has_development_secret(&params) {
            return Err(KeyError::Corrupt {
                path: path.to_path_buf(),
                reason: "is the public insecure development SRS, but the manifest labels it a ceremony SRS".into(),
            });
        }
        check_setup(path, &params)?;
        Ok(Self {
            params,
            trust,
            source_sha256,
        })
    }

    /// The parameters in halo2's raw format (what [`Srs::load_stored`] reads).
    pub fn to_bytes(&self) -> Vec<u8> {
        raw_bytes(&self.params)
    }

    /// SHA-256 of [`Srs::to_bytes`].
    pub fn sha256(&self) -> Digest32 {
        Digest32::sha256(&self.to_bytes())
    }

    /// SHA-256 of the file the parameters were loaded from.
    pub fn source_sha256(&self) -> Digest32 {
        self.source_sha256
    }

    /// Trust level.
    pub fn trust(&self) -> SrsTrust {
        self.trust
    }

    /// The halo2 parameters.
    pub(crate) fn params(&self) -> &ParamsKZG<Bn256> {
        &self.params
    }
}

/// The seeded generator the development SRS is drawn from.
fn dev_rng() -> rand_chacha::ChaCha20Rng {
    let seed: [u8; 32] = Sha256::digest(DEV_SRS_SEED.as_bytes()).into();
    rand_chacha::ChaCha20Rng::from_seed(seed)
}

/// `g[1]` of the development SRS, the same at every size: `ParamsKZG::setup`
/// draws its secret as the first value of the generator, before anything
/// that depends on `k`, so this is `secret · G1` for that first value.
pub(crate) fn dev_g1() -> G1Affine {
    static G1: std::sync::OnceLock<G1Affine> = std::sync::OnceLock::new();
    *G1.get_or_init(|| (G1Affine::generator() * dev_secret()).to_affine())
}

/// The development SRS's secret (see [`dev_g1`]).
fn dev_secret() -> Fr {
    Fr::random(dev_rng())
}

/// Whether the parameters have the development secret: `g[1]` is the
/// development `g[1]`, or `g[1] = secret · g[0]` (a copy rescaled to another
/// generator, equally forgeable).
fn has_development_secret(params: &ParamsKZG<Bn256>) -> bool {
    let g = params.get_g();
    g[1] == dev_g1() || g[1] == (g[0] * dev_secret()).to_affine()
}

/// Checks that the parameters are a KZG setup: `s·G2` holds the secret of
/// `g[1] = secret · g[0]` (`e(g[1], G2) = e(g[0], s·G2)`), and every G1
/// point is the previous one times that secret. The second check is folded
/// into the first with random weights, so loading costs one pairing check
/// (a second one, on failure only, tells the two cases apart).
fn check_setup(path: &Path, params: &ParamsKZG<Bn256>) -> Result<(), KeyError> {
    use halo2_axiom::arithmetic::best_multiexp;
    let g = params.get_g();
    let corrupt = |reason: &str| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    // e(left, G2) = e(right, s·G2), checked as e(left, -G2) · e(right, s·G2) = 1.
    let pairs_up = |left: G1Affine, right: G1Affine| -> bool {
        let minus_g2 = G2Prepared::from(-params.g2());
        let s_g2 = G2Prepared::from(params.s_g2());
        bool::from(
            Bn256::multi_miller_loop(&[(&left, &minus_g2), (&right, &s_g2)])
                .final_exponentiation()
                .is_identity(),
        )
    };
    // sum_i w_i g[i+1] = secret · sum_i w_i g[i], with w_0 = 1.
    let mut rng = rand::rngs::OsRng;
    let weights: Vec<Fr> = std::iter::once(Fr::ONE)
        .chain((2..g.len()).map(|_| Fr::random(&mut rng)))
        .collect();
    let shifted = best_multiexp(&weights, &g[1..]).to_affine();
    let base = best_multiexp(&weights, &g[..g.len() - 1]).to_affine();
    if pairs_up(shifted, base) {
        return Ok(());
    }
    if !pairs_up(g[1], g[0]) {
        return Err(corrupt(
            "is not a KZG setup: s·G2 does not hold the secret of g[1] \
             (e(g[1], G2) != e(g[0], s·G2)); the file was assembled from \
             different setups or damaged: use the ceremony file as published",
        ));
    }
    Err(corrupt(
        "is not a KZG setup: its G1 points are not successive powers of one \
         secret; the file was assembled from different setups or damaged: \
         use the ceremony file as published",
    ))
}

fn raw_bytes(params: &ParamsKZG<Bn256>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw_file_len(params.k()) as usize);
    // Writing to a Vec cannot fail.
    let _ = params.write_custom(&mut out, SerdeFormat::RawBytes);
    out
}

/// A parameters file as read by [`read_params_file`].
struct ParamsFile {
    /// SHA-256 of the whole file.
    sha256: Digest32,
    /// The `k` its header declares.
    k: u32,
    /// The parts the circuit needs, as a raw `k = K` parameters buffer.
    raw: Vec<u8>,
}

/// Streams a parameters file: checks its size against the `k` in its header
/// (so a damaged or hostile file cannot trigger a large allocation), hashes
/// all of it, and keeps only what the circuit needs: the first `2^keep_k` G1
/// points and the two G2 points. Returns the file's SHA-256, its `k` and
/// those parts as a raw `k = keep_k` parameters buffer (the Lagrange bases are recomputed by
/// [`parse_params`], so the buffer repeats the monomial ones in their place).
/// Memory stays at `2^keep_k` points whatever the ceremony's size.
fn read_params_file(path: &Path, keep_k: u32) -> Result<ParamsFile, KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut header = [0u8; 4];
    file.read_exact(&mut header)
        .map_err(|_| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: "file is too short to be KZG parameters".into(),
        })?;
    let k = u32::from_le_bytes(header);
    if k < keep_k {
        return Err(KeyError::SrsTooSmall {
            found: k,
            needed: keep_k,
        });
    }
    if k > MAX_SRS_K {
        return Err(KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("declares k = {k}, above the limit of {MAX_SRS_K}"),
        });
    }
    if len != raw_file_len(k) {
        return Err(KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "is {len} bytes; halo2 raw KZG parameters for k = {k} are {} bytes",
                raw_file_len(k)
            ),
        });
    }
    let g_len = 64 * (1u64 << keep_k);
    let g2_start = len - 2 * 128;
    let mut hasher = Sha256::new();
    hasher.update(header);
    let mut g = Vec::with_capacity(g_len as usize);
    let mut g2 = Vec::with_capacity(2 * 128);
    let mut offset = 4u64;
    let mut chunk = vec![0u8; 1 << 20];
    while offset < len {
        let n = file.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Err(KeyError::Corrupt {
                path: path.to_path_buf(),
                reason: "file shrank while being read".into(),
            });
        }
        let data = &chunk[..n];
        hasher.update(data);
        // Copy the parts of this chunk that fall in [start, end).
        let keep = |start: u64, end: u64, out: &mut Vec<u8>| {
            let (lo, hi) = (start.max(offset), end.min(offset + n as u64));
            if lo < hi {
                out.extend_from_slice(&data[(lo - offset) as usize..(hi - offset) as usize]);
            }
        };
        keep(4, 4 + g_len, &mut g);
        keep(g2_start, len, &mut g2);
        offset += n as u64;
    }
    let mut raw = Vec::with_capacity(raw_file_len(keep_k) as usize);
    raw.extend_from_slice(&keep_k.to_le_bytes());
    raw.extend_from_slice(&g);
    raw.extend_from_slice(&g);
    raw.extend_from_slice(&g2);
    Ok(ParamsFile {
        sha256: Digest32(hasher.finalize().into()),
        k,
        raw,
    })
}

/// Parses the parameters, rebuilds the Lagrange bases from the monomial ones
/// (so the file's copy is never trusted), checks that every point is on its
/// curve (and the G2 points in the prime-order subgroup), and downsizes to
/// the circuit's `k`.
fn parse_params(path: &Path, bytes: &[u8], k: u32) -> Result<ParamsKZG<Bn256>, KeyError> {
    use halo2_axiom::halo2curves::group::cofactor::CofactorGroup;
    use halo2_axiom::halo2curves::CurveAffine;
    let corrupt = |reason: String| KeyError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = bytes;
    let mut params = ParamsKZG::<Bn256>::read_custom(&mut reader, SerdeFormat::RawBytes)
        .map_err(|e| corrupt(format!("invalid KZG parameters: {e}")))?;
    params.downsize(k);
    if let Some(i) = params
        .get_g()
        .iter()
        .position(|g| !bool::from(g.is_on_curve()) || bool::from(g.is_identity()))
    {
        return Err(corrupt(format!("G1 point {i} is not a valid curve point")));
    }
    for (name, point) in [("g2", params.g2()), ("s_g2", params.s_g2())] {
        let valid = point.is_on_curve() & !point.is_identity() & point.to_curve().is_torsion_free();
        if !bool::from(valid) {
            return Err(corrupt(format!("{name} is not a valid G2 point")));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The development SRS's `g[1]` does not depend on `k`: the secret is the
    /// generator's first draw. This is what lets [`has_development_secret`]
    /// recognise the development setup at any size from one point.
    #[test]
    fn dev_g1_is_the_same_at_every_size() {
        let at = |k: u32| ParamsKZG::<Bn256>::setup(k, dev_rng()).get_g()[1];
        assert_eq!(at(K), dev_g1());
        assert_eq!(at(K + 1), dev_g1());
        assert_eq!(Srs::insecure_dev().params().get_g()[1], dev_g1());
        // Another seed has another secret.
        let other = ParamsKZG::<Bn256>::setup(K + 1, rand_chacha::ChaCha20Rng::from_seed([7; 32]));
        assert_ne!(other.get_g()[1], dev_g1());
        assert!(!has_development_secret(&other));
        assert!(has_development_secret(Srs::insecure_dev().params()));
    }

    /// A ceremony file is read at a batch's size when it has the rows, cut
    /// down to exactly them, and refused (naming both sizes) when it has
    /// fewer; its pin is checked at every size.
    #[test]
    fn a_ceremony_file_loads_at_the_size_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ceremony.params");
        let params = ParamsKZG::<Bn256>::setup(K + 2, rand_chacha::ChaCha20Rng::from_seed([9; 32]));
        let mut bytes = Vec::new();
        params
            .write_custom(&mut bytes, SerdeFormat::RawBytes)
            .unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let pin = Digest32::sha256(&bytes);
        assert_eq!(Srs::load_ceremony(&path, &pin).unwrap().k(), K);
        let larger = Srs::load_ceremony_at(&path, &pin, K + 1).unwrap();
        assert_eq!(larger.k(), K + 1);
        assert_eq!(larger.params().get_g()[1], params.get_g()[1]);
        assert!(matches!(
            Srs::load_ceremony_at(&path, &pin, K + 3),
            Err(KeyError::SrsTooSmall { found, needed }) if found == K + 2 && needed == K + 3
        ));
        assert!(matches!(
            Srs::load_ceremony_at(&path, &Digest32([0; 32]), K + 1),
            Err(KeyError::SrsPin { .. })
        ));
    }
}
