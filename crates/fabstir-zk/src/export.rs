//! The verifying key in a portable form, for verifiers outside this crate
//! (the JavaScript client in `clients/js`).
//!
//! A client must trust nothing but a `vk_id` it pinned, so the export
//! carries exactly the data the id is computed from ([`crate::VkId`]):
//! halo2's processed key bytes, halo2's pinned description (whose Blake2b
//! hash is the key's transcript representation: it holds the domain, every
//! gate polynomial, the queries and the fixed commitments) and the SRS points
//! `[1]_1`, `[1]_2`, `[s]_2`. A client recomputes the id from these and
//! derives everything it verifies with from them; a file whose id differs
//! from the pinned one is refused.
//!
//! JSON form (hex is `0x` + big-endian digits):
//!
//! ```text
//! { "format": "fabstir-zk verifying key", "format_version": 1,
//!   "circuit_version": 2, "vk_id": "0x..",
//!   "vk": "0x..",            halo2 VerifyingKey::to_bytes(Processed)
//!   "pinned": "..",          format!("{:?}", vk.pinned()), hashed by halo2
//!   "g1": ["x", "y"], "g2": [["x.c0", "x.c1"], ["y.c0", "y.c1"]],
//!   "s_g2": [["x.c0", "x.c1"], ["y.c0", "y.c1"]] }
//! ```

use halo2_axiom::halo2curves::bn256::{Fq, G1Affine, G2Affine};
use halo2_axiom::halo2curves::ff::PrimeField;
use halo2_axiom::poly::commitment::ParamsProver as _;
use halo2_axiom::SerdeFormat;
use serde_json::{json, Value};

use crate::batch::BatchVerifyingKey;
use crate::error::KeyError;
use crate::keys::VerifyingKey;
use crate::CircuitVersion;

/// The `format` field of an export.
pub const EXPORT_FORMAT: &str = "fabstir-zk verifying key";
/// The `format` field of a batch verifying key's export.
pub const BATCH_EXPORT_FORMAT: &str = "fabstir-zk batch verifying key";
/// The `format_version` field of an export.
pub const EXPORT_FORMAT_VERSION: u8 = 1;

fn fq_hex(x: &Fq) -> String {
    let mut be = x.to_repr();
    be.as_mut().reverse();
    format!("0x{}", hex::encode(be.as_ref()))
}

fn g1_json(p: &G1Affine) -> Value {
    json!([fq_hex(&p.x), fq_hex(&p.y)])
}

fn g2_json(p: &G2Affine) -> Value {
    json!([
        [fq_hex(&p.x.c0), fq_hex(&p.x.c1)],
        [fq_hex(&p.y.c0), fq_hex(&p.y.c1)]
    ])
}

impl VerifyingKey {
    /// halo2's pinned description in the exact form its transcript
    /// representation hashes (`{:?}`, one line), unlike [`Self::pinned`].
    pub fn pinned_compact(&self) -> String {
        format!("{:?}", self.vk.pinned())
    }

    /// The portable export (see the module documentation). Only keys of
    /// circuit version 2 or later are exported: a version 1 id does not
    /// cover the SRS points, so a client could not trust them.
    pub fn export_json(&self) -> Result<String, KeyError> {
        if self.version() == CircuitVersion::V1 {
            return Err(KeyError::Pairing(
                "a circuit version 1 key cannot be exported: its vk_id does not cover the SRS points a client verifies with".into(),
            ));
        }
        let params = self.srs.params();
        let export = json!({
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "circuit_version": self.version().as_u8(),
            "vk_id": self.id().to_string(),
            "vk": format!("0x{}", hex::encode(self.vk.to_bytes(SerdeFormat::Processed))),
            "pinned": self.pinned_compact(),
            "g1": g1_json(&params.get_g()[0]),
            "g2": g2_json(&params.g2()),
            "s_g2": g2_json(&params.s_g2()),
        });
        serde_json::to_string_pretty(&export)
            .map_err(|e| KeyError::Backend(format!("cannot encode the export: {e}")))
    }
}

impl BatchVerifyingKey {
    /// The portable export of a batch key: the single key's form with
    /// `"format": "fabstir-zk batch verifying key"` and `"entries": N` (the
    /// batch size, which the batch `vk_id` covers) instead of
    /// `circuit_version`.
    pub fn export_json(&self) -> Result<String, KeyError> {
        let params = self.srs().params();
        let vk = self.halo2();
        let export = json!({
            "format": BATCH_EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "entries": self.size().get(),
            "vk_id": self.id().to_string(),
            "vk": format!("0x{}", hex::encode(vk.to_bytes(SerdeFormat::Processed))),
            "pinned": format!("{:?}", vk.pinned()),
            "g1": g1_json(&params.get_g()[0]),
            "g2": g2_json(&params.g2()),
            "s_g2": g2_json(&params.s_g2()),
        });
        serde_json::to_string_pretty(&export)
            .map_err(|e| KeyError::Backend(format!("cannot encode the export: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Srs;

    #[test]
    fn export_carries_the_id_and_the_pinned_text_halo2_hashes() {
        let vk = VerifyingKey::derive(Arc::new(Srs::insecure_dev())).unwrap();
        let text = vk.export_json().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["vk_id"], json!(vk.id().to_string()));
        assert_eq!(v["circuit_version"], json!(vk.version().as_u8()));
        let pinned = v["pinned"].as_str().unwrap();
        // The compact and the pretty form describe the same key.
        let squash = |s: &str| s.split_whitespace().collect::<String>().replace(",)", ")");
        let pretty = squash(&vk.pinned()).replace(",]", "]").replace(",}", "}");
        assert_eq!(squash(pinned), pretty);
        assert!(!pinned.contains('\n'));
    }

    #[test]
    fn a_batch_key_export_names_its_size_and_id() {
        let size = crate::BatchSize::new(1).unwrap();
        let vk = BatchVerifyingKey::derive(Arc::new(Srs::insecure_dev()), size).unwrap();
        let v: Value = serde_json::from_str(&vk.export_json().unwrap()).unwrap();
        assert_eq!(v["format"], json!(BATCH_EXPORT_FORMAT));
        assert_eq!(v["entries"], json!(1));
        assert_eq!(v["vk_id"], json!(vk.id().to_string()));
        assert!(v.get("circuit_version").is_none());
        // Another size is another key with another id.
        let two = BatchVerifyingKey::for_key_srs(
            &Arc::new(Srs::insecure_dev()),
            crate::BatchSize::new(2).unwrap(),
        )
        .unwrap();
        assert_ne!(two.id(), vk.id());
    }

    #[test]
    fn version_1_keys_are_not_exported() {
        let vk = VerifyingKey::derive_version(Arc::new(Srs::insecure_dev()), CircuitVersion::V1)
            .unwrap();
        assert!(vk.export_json().is_err());
    }
}
