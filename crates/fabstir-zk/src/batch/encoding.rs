//! The binary form of a batch proof, for storage and the wire.
//!
//! ```text
//! magic "FZK-BP1\0" (8) | format 1 (1) | vk_id (32) | N (2, big-endian)
//! chain_id (8) | marketplace (20) | host_id (32)
//! N x [ job_id (32) | tokens (8) | commitment (32) ]
//! proof length (4, big-endian) | proof bytes
//! ```
//!
//! The parser is bounded: it checks the magic, the format, that `N` is a
//! supported batch size, that the proof length is at most
//! [`MAX_PROOF_BYTES`] and the whole input exactly as long as these say
//! (no trailing bytes), before allocating; every field element is
//! canonical (below the BN254 scalar modulus). It never panics on input.

use super::{BatchProof, BatchPublic, BatchPublicEntry, BatchSize};
use crate::error::BatchError;
use crate::keys::VkId;
use crate::statement::{field_from_be, field_to_be, Address, FieldHex, HostId, JobId};

/// First bytes of every encoded batch proof.
pub const MAGIC: &[u8; 8] = b"FZK-BP1\0";

/// The encoding's format version.
pub const FORMAT: u8 = 1;

/// The largest proof the parser accepts (batch proofs are 2,432 to 2,496
/// bytes).
pub const MAX_PROOF_BYTES: usize = 8_192;

/// The longest binary form (the largest batch, the longest proof).
pub const MAX_ENCODED_BYTES: usize = HEADER + ENTRY * BatchSize::MAX + 4 + MAX_PROOF_BYTES;

/// Bytes before the entries.
const HEADER: usize = 8 + 1 + 32 + 2 + 8 + 20 + 32;

/// Bytes per entry.
const ENTRY: usize = 32 + 8 + 32;

/// Reads fixed-size fields from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if self.0.len() < n {
            return Err(BatchError::Encoding("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BatchError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn field(&mut self, what: &'static str) -> Result<FieldHex, BatchError> {
        field_from_be(&self.array::<32>()?)
            .map(FieldHex)
            .ok_or(BatchError::Encoding(what))
    }
}

impl BatchProof {
    /// The binary form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let public = &self.public;
        let mut out =
            Vec::with_capacity(HEADER + ENTRY * public.entries.len() + 4 + self.proof.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&self.vk_id.0);
        out.extend_from_slice(&(self.size.get() as u16).to_be_bytes());
        out.extend_from_slice(&public.chain_id.to_be_bytes());
        out.extend_from_slice(public.marketplace.as_slice());
        out.extend_from_slice(&field_to_be(&public.host_id.0));
        for entry in &public.entries {
            out.extend_from_slice(&entry.job_id.0);
            out.extend_from_slice(&entry.tokens.to_be_bytes());
            out.extend_from_slice(&field_to_be(&entry.commitment.0));
        }
        out.extend_from_slice(&(self.proof.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.proof);
        out
    }

    /// The binary form as text: `0x` and lower-case hex digits (the form
    /// of the API and of text files).
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.to_bytes()))
    }

    /// Parses [`BatchProof::to_hex`]'s form (surrounding whitespace
    /// allowed, as in a text file), bounded like [`BatchProof::from_bytes`]
    /// before decoding.
    pub fn from_hex(text: &str) -> Result<Self, BatchError> {
        let Some(digits) = text.trim().strip_prefix("0x") else {
            return Err(BatchError::Encoding("the hex form must start with 0x"));
        };
        if digits.len() > 2 * MAX_ENCODED_BYTES {
            return Err(BatchError::Encoding(
                "the hex form is longer than any batch proof",
            ));
        }
        let bytes = hex::decode(digits).map_err(|_| {
            BatchError::Encoding(
                "the hex form has an odd length or a character that is not a hex digit",
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses the binary form, refusing anything malformed (see the module
    /// documentation) with the reason.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BatchError> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(BatchError::Encoding("not a batch proof (wrong magic)"));
        }
        if r.array::<1>()?[0] != FORMAT {
            return Err(BatchError::Encoding("unknown format version"));
        }
        let vk_id = VkId(r.array::<32>()?);
        let n = usize::from(u16::from_be_bytes(r.array::<2>()?));
        let size = BatchSize::new(n)?;
        let chain_id = u64::from_be_bytes(r.array::<8>()?);
        let marketplace = Address::from(r.array::<20>()?);
        let host_id = HostId(r.field("host_id is not a canonical field element")?.0);
        // The rest must be exactly the entries, the length and the proof.
        let proof_len_at = ENTRY * n;
        let Some(len_bytes) = r.0.get(proof_len_at..proof_len_at + 4) else {
            return Err(BatchError::Encoding("truncated"));
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(len_bytes);
        let proof_len = u32::from_be_bytes(len) as usize;
        if proof_len > MAX_PROOF_BYTES {
            return Err(BatchError::Encoding("proof longer than any batch proof"));
        }
        if r.0.len() != proof_len_at + 4 + proof_len {
            return Err(BatchError::Encoding(
                "length does not match the entries and proof it declares",
            ));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(BatchPublicEntry {
                job_id: JobId(r.array::<32>()?),
                tokens: u64::from_be_bytes(r.array::<8>()?),
                commitment: r.field("a commitment is not a canonical field element")?,
            });
        }
        r.take(4)?;
        let proof = r.take(proof_len)?.to_vec();
        Ok(Self {
            vk_id,
            size,
            public: BatchPublic {
                chain_id,
                marketplace,
                host_id,
                entries,
            },
            proof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::dev_key;
    use crate::batch::{BatchEntry, BatchStatement};
    use crate::{Fr, HostKey};

    fn proof() -> BatchProof {
        let pk = dev_key(2);
        let host = HostKey::from_secret(Fr::from(0x5eed_0001));
        let statement = BatchStatement {
            chain_id: 84532,
            marketplace: crate::parse_address("0x1111111111111111111111111111111111111111")
                .unwrap(),
            host_id: host.host_id(),
            entries: vec![BatchEntry::padding(), BatchEntry::padding()],
        };
        BatchProof::create(pk, &statement, &host, rand::rngs::OsRng).unwrap()
    }

    #[test]
    fn a_proof_round_trips_and_still_verifies() {
        let proof = proof();
        let bytes = proof.to_bytes();
        assert_eq!(bytes.len(), HEADER + 2 * ENTRY + 4 + proof.proof.len());
        let back = BatchProof::from_bytes(&bytes).unwrap();
        assert_eq!(back, proof);
        back.verify(dev_key(2).verifying_key(), &proof.public)
            .unwrap();
    }

    #[test]
    fn malformed_bytes_are_refused_with_the_reason() {
        let bytes = proof().to_bytes();
        let refused = |b: &[u8]| match BatchProof::from_bytes(b) {
            Err(BatchError::Encoding(why)) => why.to_string(),
            Err(other) => other.to_string(),
            Ok(_) => panic!("accepted"),
        };
        // Every truncation, and a trailing byte.
        for len in 0..bytes.len() {
            refused(&bytes[..len]);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(refused(&longer).contains("length"));
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(refused(&bad).contains("magic"));
        let mut bad = bytes.clone();
        bad[8] = 2;
        assert!(refused(&bad).contains("format"));
        // N = 0 and N above the largest batch.
        for n in [0u16, u16::MAX] {
            let mut bad = bytes.clone();
            bad[41..43].copy_from_slice(&n.to_be_bytes());
            assert!(refused(&bad).contains("entries"), "{n}");
        }
        // A host_id or commitment at or above the field modulus.
        let mut bad = bytes.clone();
        bad[71..103].copy_from_slice(&[0xff; 32]);
        assert!(refused(&bad).contains("host_id"));
        let mut bad = bytes.clone();
        bad[HEADER + 40..HEADER + 72].copy_from_slice(&[0xff; 32]);
        assert!(refused(&bad).contains("commitment"));
        // A declared proof length over the bound, before any allocation.
        let mut bad = bytes.clone();
        let at = HEADER + 2 * ENTRY;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(refused(&bad).contains("longer"));
    }

    #[test]
    fn the_hex_form_round_trips_and_is_bounded() {
        let proof = proof();
        let text = proof.to_hex();
        assert_eq!(
            BatchProof::from_hex(&format!(" {text}\n")),
            Ok(proof.clone())
        );
        for (bad, why) in [
            (text[2..].to_string(), "0x"),
            (format!("{text}0"), "odd length"),
            (format!("{}zz", &text[..text.len() - 2]), "hex digit"),
            (
                format!("0x{}", "00".repeat(MAX_ENCODED_BYTES + 1)),
                "longer",
            ),
        ] {
            match BatchProof::from_hex(&bad) {
                Err(BatchError::Encoding(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        assert!(MAX_ENCODED_BYTES >= proof.to_bytes().len());
    }

    #[test]
    fn every_changed_byte_is_refused_or_fails_verification() {
        let proof = proof();
        let bytes = proof.to_bytes();
        let vk = dev_key(2).verifying_key();
        // One byte in every 8 (header, entries, length, proof), each flipped.
        for i in (0..bytes.len()).step_by(8) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            if let Ok(parsed) = BatchProof::from_bytes(&bad) {
                assert!(
                    parsed.verify(vk, &proof.public).is_err(),
                    "byte {i} changed and the proof still verifies"
                );
            }
        }
    }
}
