//! The signed proof-of-work claim: everything the host needs to call the
//! marketplace's
//! `submitProofOfWork(uint256 jobId, uint256 tokensClaimed, bytes32 proofHash,
//! string proofCID, bytes signature, string deltaCID)`, built from the proof
//! bytes, with its signature and ready-to-send calldata, serialisable as
//! JSON. The local ledger takes it ([`SubmissionKind::SignedPayload`](super::SubmissionKind)).

use super::abi::{
    eip191_digest, encode_submit_proof_of_work, proof_cid_from_sha256, proof_of_work_message,
    sha256,
};
use super::wallet::{to_checksum_address, HostWallet};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One proof-of-work claim, ready to submit on-chain.
///
/// Every byte field is a `0x`-prefixed lower-case hex string in JSON
/// (`uint256` values as 32-byte big-endian words, 64 hex digits), so the
/// record can be stored, inspected and sent by another tool. `calldata` is
/// the complete transaction input (selector included) for the marketplace
/// contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofOfWorkSubmission {
    /// The job's id (`uint256`, big-endian).
    #[serde(with = "hex_u256")]
    pub job_id: [u8; 32],
    /// Tokens claimed for the work (`uint256`, big-endian).
    #[serde(with = "hex_u256")]
    pub tokens_claimed: [u8; 32],
    /// SHA-256 of the proof bytes stored off-chain.
    #[serde(with = "hex_fixed")]
    pub proof_hash: [u8; 32],
    /// CIDv1 (raw, sha2-256) of the proof bytes: where they are stored.
    pub proof_cid: String,
    /// CID of the session's delta (as given by the caller; may be empty).
    pub delta_cid: String,
    /// The model the work was done with (`bytes32`).
    #[serde(with = "hex_fixed")]
    pub model_id: [u8; 32],
    /// The signing host's address.
    #[serde(with = "hex_fixed")]
    pub host_address: [u8; 20],
    /// EIP-191 signature `r || s || v` over [`proof_of_work_message`].
    #[serde(with = "hex_fixed")]
    pub signature: [u8; 65],
    /// ABI-encoded `submitProofOfWork` call.
    #[serde(with = "hex_vec")]
    pub calldata: Vec<u8>,
}

/// Why a [`ProofOfWorkSubmission`] is not self-consistent (see
/// [`ProofOfWorkSubmission::verify`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SubmissionError {
    /// `proof_cid` does not name the bytes whose hash is `proof_hash`.
    #[error("proof_cid {found} does not match proof_hash (expected {expected})")]
    CidMismatch {
        /// The CID derived from `proof_hash`.
        expected: String,
        /// The CID in the submission.
        found: String,
    },
    /// The signature is malformed (bad `v`, high `s`, or not a valid signature).
    #[error("signature is malformed: {0}")]
    BadSignature(&'static str),
    /// The signature was made by another key than `host_address`.
    #[error("signature was made by {recovered}, not by host_address {expected}")]
    WrongSigner {
        /// `host_address`, checksummed.
        expected: String,
        /// The address recovered from the signature, checksummed.
        recovered: String,
    },
    /// `calldata` is not the encoding of the submission's fields.
    #[error("calldata does not encode the submission's fields")]
    CalldataMismatch,
}

impl ProofOfWorkSubmission {
    /// Builds and signs the claim for `proof_bytes`.
    ///
    /// Computes `proof_hash = sha256(proof_bytes)`, its CID, the message
    /// `keccak256(abi.encodePacked(proofHash, host, tokensClaimed, modelId))`,
    /// the wallet's EIP-191 signature over it, and the calldata.
    pub fn build(
        wallet: &HostWallet,
        job_id: &[u8; 32],
        tokens_claimed: &[u8; 32],
        proof_bytes: &[u8],
        model_id: &[u8; 32],
        delta_cid: &str,
    ) -> Self {
        let proof_hash = sha256(proof_bytes);
        let proof_cid = proof_cid_from_sha256(&proof_hash);
        let host_address = wallet.address();
        let message = proof_of_work_message(&proof_hash, &host_address, tokens_claimed, model_id);
        let signature = wallet.sign_personal(&message);
        let calldata = encode_submit_proof_of_work(
            job_id,
            tokens_claimed,
            &proof_hash,
            &proof_cid,
            &signature,
            delta_cid,
        );
        Self {
            job_id: *job_id,
            tokens_claimed: *tokens_claimed,
            proof_hash,
            proof_cid,
            delta_cid: delta_cid.to_owned(),
            model_id: *model_id,
            host_address,
            signature,
            calldata,
        }
    }

    /// Checks that the fields agree with each other, e.g. after reading a
    /// submission back from JSON and before sending it: the CID names
    /// `proof_hash`, the signature is a low-s, `v ∈ {27, 28}` signature by
    /// `host_address` over the message, and `calldata` encodes the fields.
    ///
    /// It cannot check that `proof_hash` is the hash of the stored proof:
    /// that needs the proof bytes.
    pub fn verify(&self) -> Result<(), SubmissionError> {
        let expected_cid = proof_cid_from_sha256(&self.proof_hash);
        if expected_cid != self.proof_cid {
            return Err(SubmissionError::CidMismatch {
                expected: expected_cid,
                found: self.proof_cid.clone(),
            });
        }
        let message = proof_of_work_message(
            &self.proof_hash,
            &self.host_address,
            &self.tokens_claimed,
            &self.model_id,
        );
        let recovered = recover_personal_signer(&message, &self.signature)?;
        if recovered != self.host_address {
            return Err(SubmissionError::WrongSigner {
                expected: to_checksum_address(&self.host_address),
                recovered: to_checksum_address(&recovered),
            });
        }
        let calldata = encode_submit_proof_of_work(
            &self.job_id,
            &self.tokens_claimed,
            &self.proof_hash,
            &self.proof_cid,
            &self.signature,
            &self.delta_cid,
        );
        if calldata != self.calldata {
            return Err(SubmissionError::CalldataMismatch);
        }
        Ok(())
    }
}

/// The address that made an EIP-191 `personal_sign` signature (`r || s || v`)
/// over a 32-byte message, by the marketplace's rule (`PersonalSign.signer`,
/// `contracts/src/PersonalSign.sol`): `v` is 27 or 28, or 0 or 1 read as 27
/// or 28; `s` is at most half the curve order; `r` and `s` must recover a
/// key. The cases of `contracts/test/vectors/signatures.json` hold this
/// function and the contract to the same answers.
pub fn recover_personal_signer(
    message32: &[u8; 32],
    signature: &[u8; 65],
) -> Result<[u8; 20], SubmissionError> {
    // As the contract: a `v` below 27 has 27 added, then it must be 27 or 28.
    let v = match signature[64] {
        v @ 0..27 => v + 27,
        v => v,
    };
    let y_parity = match v {
        27 => false,
        28 => true,
        _ => return Err(SubmissionError::BadSignature("v is not 0, 1, 27 or 28")),
    };
    let sig = alloy::primitives::Signature::from_bytes_and_parity(&signature[..64], y_parity);
    if sig.to_k256().is_err() {
        return Err(SubmissionError::BadSignature("r or s is out of range"));
    }
    if sig.normalize_s().is_some() {
        return Err(SubmissionError::BadSignature(
            "s is in the upper half of the curve order",
        ));
    }
    let digest = alloy::primitives::B256::from(eip191_digest(message32));
    let address = sig
        .recover_address_from_prehash(&digest)
        .map_err(|_| SubmissionError::BadSignature("no public key recovers from it"))?;
    Ok(address.0 .0)
}

/// Serde for fixed-size byte arrays as `0x` + exactly `2 * N` hex digits.
mod hex_fixed {
    use serde::{de::Error as _, Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = super::strip_0x(&text).map_err(D::Error::custom)?;
        if digits.len() != 2 * N {
            return Err(D::Error::custom(format_args!(
                "expected 0x followed by {} hex digits, found {} digits",
                2 * N,
                digits.len()
            )));
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(digits, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// Serde for `uint256` words: written as `0x` + 64 hex digits; read from `0x`
/// + 1 to 64 hex digits (left-padded with zeros).
mod hex_u256 {
    use serde::{de::Error as _, Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(word: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        super::hex_fixed::serialize(word, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = super::strip_0x(&text).map_err(D::Error::custom)?;
        if digits.is_empty() || digits.len() > 64 {
            return Err(D::Error::custom(format_args!(
                "expected a uint256 as 0x followed by 1 to 64 hex digits, found {} digits",
                digits.len()
            )));
        }
        let padded = format!("{digits:0>64}");
        let mut out = [0u8; 32];
        hex::decode_to_slice(padded, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// Serde for variable-length bytes as `0x` + an even number of hex digits.
mod hex_vec {
    use serde::{de::Error as _, Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = super::strip_0x(&text).map_err(D::Error::custom)?;
        hex::decode(digits).map_err(D::Error::custom)
    }
}

/// The digits after a mandatory `0x` prefix.
fn strip_0x(text: &str) -> Result<&str, &'static str> {
    text.strip_prefix("0x")
        .ok_or("expected a hex string starting with 0x")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::abi::{keccak256, proof_cid, u256_from_u64};
    use crate::chain::contract::IFabstirMarketplace::submitProofOfWorkCall;
    use alloy_primitives::U256;
    use alloy_sol_types::SolCall as _;
    use k256::ecdsa::Signature;

    fn sample() -> (HostWallet, ProofOfWorkSubmission) {
        let wallet = HostWallet::from_hex(
            "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        )
        .unwrap();
        let model_id = keccak256(b"llama-3-8b-instruct");
        let submission = ProofOfWorkSubmission::build(
            &wallet,
            &u256_from_u64(42),
            &u256_from_u64(1_500),
            b"proof envelope bytes",
            &model_id,
            "bafkreidelta",
        );
        (wallet, submission)
    }

    #[test]
    fn build_computes_every_field() {
        let (wallet, s) = sample();
        assert_eq!(s.proof_hash, sha256(b"proof envelope bytes"));
        assert_eq!(s.proof_cid, proof_cid(b"proof envelope bytes"));
        assert_eq!(s.host_address, wallet.address());
        assert_eq!(s.model_id, keccak256(b"llama-3-8b-instruct"));
        let message = proof_of_work_message(
            &s.proof_hash,
            &s.host_address,
            &s.tokens_claimed,
            &s.model_id,
        );
        assert_eq!(s.signature, wallet.sign_personal(&message));
        assert_eq!(
            recover_personal_signer(&message, &s.signature).unwrap(),
            wallet.address()
        );
        s.verify().unwrap();

        let call = submitProofOfWorkCall::abi_decode(&s.calldata).unwrap();
        assert_eq!(call.jobId, U256::from(42));
        assert_eq!(call.tokensClaimed, U256::from(1_500));
        assert_eq!(call.proofHash.0, s.proof_hash);
        assert_eq!(call.proofCID, s.proof_cid);
        assert_eq!(call.signature.as_ref(), s.signature.as_slice());
        assert_eq!(call.deltaCID, "bafkreidelta");
    }

    #[test]
    fn json_is_0x_hex_and_round_trips() {
        let (wallet, s) = sample();
        let json = serde_json::to_value(&s).unwrap();
        let field = |name: &str| json[name].as_str().unwrap().to_owned();
        assert_eq!(field("job_id"), format!("0x{:064x}", 42));
        assert_eq!(field("tokens_claimed"), format!("0x{:064x}", 1_500));
        assert_eq!(
            field("proof_hash"),
            format!("0x{}", hex::encode(s.proof_hash))
        );
        assert_eq!(
            field("host_address"),
            wallet.address_checksummed().to_lowercase()
        );
        assert_eq!(field("signature").len(), 2 + 130);
        assert_eq!(field("calldata"), format!("0x{}", hex::encode(&s.calldata)));
        assert_eq!(field("proof_cid"), s.proof_cid);
        assert_eq!(field("delta_cid"), "bafkreidelta");
        assert_eq!(json.as_object().unwrap().len(), 9);

        let back: ProofOfWorkSubmission = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, s);
        back.verify().unwrap();

        // Short uint256 hex is accepted; malformed hex is rejected.
        let mut short = json.clone();
        short["job_id"] = "0x2a".into();
        let parsed: ProofOfWorkSubmission = serde_json::from_value(short).unwrap();
        assert_eq!(parsed.job_id, u256_from_u64(42));
        for (name, bad) in [
            ("proof_hash", "0x1234"),
            ("proof_hash", &field("proof_hash")[2..]),
            ("signature", "0xzz"),
            ("job_id", "0x"),
            ("calldata", "0x123"),
        ] {
            let mut broken = json.clone();
            broken[name] = bad.into();
            assert!(
                serde_json::from_value::<ProofOfWorkSubmission>(broken).is_err(),
                "{name} = {bad}"
            );
        }
    }

    #[test]
    fn verify_catches_tampering() {
        let (_, s) = sample();

        let mut t = s.clone();
        t.tokens_claimed = u256_from_u64(1_501);
        assert!(matches!(
            t.verify(),
            Err(SubmissionError::WrongSigner { .. })
        ));

        let mut t = s.clone();
        t.host_address[0] ^= 1;
        assert!(matches!(
            t.verify(),
            Err(SubmissionError::WrongSigner { .. })
        ));

        let mut t = s.clone();
        t.proof_cid = proof_cid(b"other proof");
        assert!(matches!(
            t.verify(),
            Err(SubmissionError::CidMismatch { .. })
        ));

        let mut t = s.clone();
        t.delta_cid.push('x');
        assert_eq!(t.verify(), Err(SubmissionError::CalldataMismatch));

        // v written as 0 or 1 is the same signature (the contract adds 27);
        // any other v is refused.
        let mut t = s.clone();
        t.signature[64] -= 27;
        t.calldata = encode_submit_proof_of_work(
            &t.job_id,
            &t.tokens_claimed,
            &t.proof_hash,
            &t.proof_cid,
            &t.signature,
            &t.delta_cid,
        );
        t.verify().unwrap();
        for v in [2, 26, 29, 37] {
            t.signature[64] = v;
            assert_eq!(
                t.verify(),
                Err(SubmissionError::BadSignature("v is not 0, 1, 27 or 28")),
                "v = {v}"
            );
        }

        // The high-s twin of a valid signature is refused.
        let mut t = s.clone();
        let sig = Signature::from_slice(&s.signature[..64]).unwrap();
        let high = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        t.signature[..64].copy_from_slice(&high.to_bytes());
        t.signature[64] = 55 - t.signature[64]; // 27 <-> 28
        assert_eq!(
            t.verify(),
            Err(SubmissionError::BadSignature(
                "s is in the upper half of the curve order"
            ))
        );
    }

    /// `contracts/test/vectors/signatures.json`: the signature cases forge's
    /// `test/PersonalSign.t.sol` checks the contract's rule with.
    const SIGNATURE_VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/test/vectors/signatures.json"
    );
    const REGENERATE_SIGNATURES: &str =
        "FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-node --lib chain::proof_of_work::tests::signature_vectors";

    /// The signer libsecp256k1 (not k256, which the rule uses) recovers from
    /// `r || s` with recovery id `y_parity` over the EIP-191 digest of
    /// `message`; `None` when no key recovers.
    fn libsecp_signer(message: &[u8; 32], rs: &[u8], y_parity: bool) -> Option<[u8; 20]> {
        use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
        let recid = RecoveryId::try_from(i32::from(y_parity)).ok()?;
        let sig = RecoverableSignature::from_compact(rs, recid).ok()?;
        let msg = secp256k1::Message::from_digest(eip191_digest(message));
        let key = secp256k1::SECP256K1.recover_ecdsa(msg, &sig).ok()?;
        Some(
            keccak256(&key.serialize_uncompressed()[1..])[12..]
                .try_into()
                .unwrap(),
        )
    }

    /// The cases, each with the answer the contract's rule gives: the signer
    /// recovered by libsecp256k1 for a signature the rule accepts, refused
    /// otherwise.
    fn signature_cases() -> serde_json::Value {
        let order: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
            .parse()
            .unwrap();
        let half = order >> 1;
        let wallet = HostWallet::from_hex(
            "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        )
        .unwrap();
        // The first messages whose signatures have v = 27 and v = 28.
        let signed = |v: u8| {
            (0u32..)
                .map(|i| keccak256(format!("fabstir signature vector {i}").as_bytes()))
                .map(|m| (m, wallet.sign_personal(&m)))
                .find(|(_, sig)| sig[64] == v)
                .unwrap()
        };
        let (m27, s27) = signed(27);
        let (m28, s28) = signed(28);
        let with = |sig: &[u8; 65], r: Option<U256>, s: Option<U256>, v: u8| {
            let mut out = *sig;
            if let Some(r) = r {
                out[..32].copy_from_slice(&r.to_be_bytes::<32>());
            }
            if let Some(s) = s {
                out[32..64].copy_from_slice(&s.to_be_bytes::<32>());
            }
            out[64] = v;
            out
        };
        let s_of = |sig: &[u8; 65]| U256::from_be_slice(&sig[32..64]);
        let twin = order - s_of(&s27);
        // An r that is no point's x coordinate: no key recovers from it.
        let off_curve = (1u64..)
            .map(U256::from)
            .find(|r| libsecp_signer(&m27, &with(&s27, Some(*r), None, 27)[..64], false).is_none())
            .unwrap();
        let cases: Vec<(&str, [u8; 32], [u8; 65], bool)> = vec![
            ("v 27", m27, s27, true),
            ("v 28", m28, s28, true),
            ("v 0 (27 less 27)", m27, with(&s27, None, None, 0), true),
            ("v 1 (28 less 27)", m28, with(&s28, None, None, 1), true),
            (
                "the other parity: another signer",
                m27,
                with(&s27, None, None, 28),
                true,
            ),
            (
                "the other parity as 1",
                m27,
                with(&s27, None, None, 1),
                true,
            ),
            (
                "s at half the order",
                m27,
                with(&s27, None, Some(half), 27),
                true,
            ),
            ("high-s twin", m27, with(&s27, None, Some(twin), 28), false),
            (
                "high-s twin, v 1",
                m27,
                with(&s27, None, Some(twin), 1),
                false,
            ),
            (
                "s one above half the order",
                m27,
                with(&s27, None, Some(half + U256::from(1)), 27),
                false,
            ),
            ("v 2", m27, with(&s27, None, None, 2), false),
            ("v 26", m27, with(&s27, None, None, 26), false),
            ("v 29", m27, with(&s27, None, None, 29), false),
            (
                "v 37 (EIP-155, chain 1)",
                m27,
                with(&s27, None, None, 37),
                false,
            ),
            ("v 255", m27, with(&s27, None, None, 255), false),
            ("r zero", m27, with(&s27, Some(U256::ZERO), None, 27), false),
            ("s zero", m27, with(&s27, None, Some(U256::ZERO), 27), false),
            (
                "r equal to the order",
                m27,
                with(&s27, Some(order), None, 27),
                false,
            ),
            (
                "r on no point of the curve",
                m27,
                with(&s27, Some(off_curve), None, 27),
                false,
            ),
        ];
        let cases: Vec<serde_json::Value> = cases
            .into_iter()
            .map(|(name, message, signature, accepted)| {
                let signer = if accepted {
                    let parity = matches!(signature[64], 1 | 28);
                    libsecp_signer(&message, &signature[..64], parity).expect("a key recovers")
                } else {
                    [0u8; 20]
                };
                serde_json::json!({
                    "name": name,
                    "message": format!("0x{}", hex::encode(message)),
                    "signature": format!("0x{}", hex::encode(signature)),
                    "accepted": accepted,
                    "signer": to_checksum_address(&signer),
                })
            })
            .collect();
        serde_json::json!({
            "about": "EIP-191 signatures (r || s || v over the digest of `message`) and the signer the marketplace's rule (contracts/src/PersonalSign.sol) and the node's (recover_personal_signer) give: v is 27 or 28, or 0 or 1 read as 27 or 28; s is at most half the secp256k1 order. A refused case has accepted false and the zero signer. Signed by the key 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318. Generated by crates/fabstir-node/src/chain/proof_of_work.rs; do not edit.",
            "regenerate": REGENERATE_SIGNATURES,
            "cases": cases,
        })
    }

    #[test]
    fn signature_vectors_are_current_and_the_rule_is_the_contracts() {
        let expected = signature_cases();
        if std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some() {
            let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
            std::fs::write(SIGNATURE_VECTORS, text).unwrap();
        }
        let text = std::fs::read_to_string(SIGNATURE_VECTORS).unwrap_or_else(|e| {
            panic!("{SIGNATURE_VECTORS}: {e}; regenerate with {REGENERATE_SIGNATURES}")
        });
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            file, expected,
            "{SIGNATURE_VECTORS} drifted from its generator: regenerate with {REGENERATE_SIGNATURES}"
        );
        let cases = file["cases"].as_array().unwrap();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let bytes = |key: &str| hex::decode(&case[key].as_str().unwrap()[2..]).unwrap();
            let message: [u8; 32] = bytes("message").try_into().unwrap();
            let signature: [u8; 65] = bytes("signature").try_into().unwrap();
            let got = recover_personal_signer(&message, &signature);
            if case["accepted"].as_bool().unwrap() {
                let signer: [u8; 20] = bytes("signer").try_into().unwrap();
                assert_eq!(got, Ok(signer), "{name}");
            } else {
                assert!(
                    matches!(got, Err(SubmissionError::BadSignature(_))),
                    "{name}: {got:?}"
                );
            }
        }
        // Every v the rule accepts is covered.
        for v in [0u8, 1, 27, 28] {
            assert!(cases.iter().any(|c| {
                c["accepted"] == true
                    && c["signature"]
                        .as_str()
                        .unwrap()
                        .ends_with(&format!("{v:02x}"))
            }));
        }
    }
}
