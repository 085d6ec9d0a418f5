//! Pure encoding functions for the marketplace's `submitProofOfWork` call.
//!
//! Nothing here touches a key: these functions turn values into the exact
//! bytes the contract sees (the signed message, the calldata, the proof CID),
//! so they can be tested against independent implementations and reused by
//! anything that only needs to *check* a submission.
//!
//! Integers of Solidity type `uint256` are passed as `[u8; 32]` in big-endian
//! order (the ABI's own representation); [`u256_from_u64`] builds one from a
//! `u64`. Keccak, EIP-191, the packed encoding and the calldata are alloy's.

use std::sync::LazyLock;

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::sol_types::{SolCall as _, SolValue as _};
use sha2::{Digest as _, Sha256};

use super::contract::IFabstirMarketplace::submitProofOfWorkCall;

/// The canonical Solidity signature of the marketplace function.
///
/// Kept as text for tools and documentation; a test checks it against the
/// signature alloy derives from the contract interface.
pub const SUBMIT_PROOF_OF_WORK_SIGNATURE: &str =
    "submitProofOfWork(uint256,uint256,bytes32,string,bytes,string)";

/// Function selector of `submitProofOfWork`: the first 4 bytes of
/// `keccak256("submitProofOfWork(uint256,uint256,bytes32,string,bytes,string)")`,
/// as alloy's `sol!` derives it from the interface (a unit test pins the
/// bytes).
pub static SUBMIT_PROOF_OF_WORK_SELECTOR: LazyLock<[u8; 4]> =
    LazyLock::new(|| submitProofOfWorkCall::SELECTOR);

/// Length in bytes of `abi.encodePacked(bytes32, address, uint256, bytes32)`:
/// 32 + 20 + 32 + 32.
pub const PROOF_OF_WORK_PACKED_LEN: usize = 116;

/// Keccak-256 (the Ethereum variant, not NIST SHA3-256) of `data`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    alloy::primitives::keccak256(data).0
}

/// SHA-256 of `data`: the `proofHash` of proof bytes stored off-chain.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A `uint256` (32-byte big-endian word) holding `value`.
pub fn u256_from_u64(value: u64) -> [u8; 32] {
    U256::from(value).to_be_bytes()
}

/// The `u64` a `uint256` word holds, or `None` when it is larger.
pub fn u64_from_u256(word: &[u8; 32]) -> Option<u64> {
    u64::try_from(U256::from_be_bytes(*word)).ok()
}

/// The packed message the contract rebuilds before checking the host's
/// signature: `abi.encodePacked(proofHash, hostAddress, uint256 tokensClaimed,
/// bytes32 modelId)`, i.e. `proof_hash (32) || host (20) || tokens_claimed (32,
/// big-endian) || model_id (32)`, 116 bytes with no padding.
///
/// Exposed separately from the hash so its layout can be checked.
pub fn proof_of_work_packed(
    proof_hash: &[u8; 32],
    host: &[u8; 20],
    tokens_claimed: &[u8; 32],
    model_id: &[u8; 32],
) -> [u8; PROOF_OF_WORK_PACKED_LEN] {
    let packed = (
        FixedBytes::<32>::from(*proof_hash),
        Address::from(*host),
        U256::from_be_bytes(*tokens_claimed),
        FixedBytes::<32>::from(*model_id),
    )
        .abi_encode_packed();
    let mut out = [0u8; PROOF_OF_WORK_PACKED_LEN];
    out.copy_from_slice(&packed);
    out
}

/// The 32-byte message the host signs for a proof-of-work claim:
/// `keccak256(abi.encodePacked(proofHash, hostAddress, tokensClaimed, modelId))`.
///
/// The wallet then signs it with EIP-191 `personal_sign` (see
/// [`eip191_digest`]); binding the host address and model into the message
/// stops a signature being replayed by another host or for another model.
pub fn proof_of_work_message(
    proof_hash: &[u8; 32],
    host: &[u8; 20],
    tokens_claimed: &[u8; 32],
    model_id: &[u8; 32],
) -> [u8; 32] {
    keccak256(&proof_of_work_packed(
        proof_hash,
        host,
        tokens_claimed,
        model_id,
    ))
}

/// The digest actually signed by `personal_sign` over a 32-byte message:
/// `keccak256("\x19Ethereum Signed Message:\n32" || message)`.
///
/// This is what Solidity's `MessageHashUtils.toEthSignedMessageHash(bytes32)`
/// computes, so `ecrecover(digest, v, r, s)` on-chain yields the host address.
pub fn eip191_digest(message: &[u8; 32]) -> [u8; 32] {
    alloy::primitives::eip191_hash_message(message).0
}

/// Calldata for `submitProofOfWork(uint256 jobId, uint256 tokensClaimed,
/// bytes32 proofHash, string proofCID, bytes signature, string deltaCID)`:
/// the 4-byte selector and the standard Solidity ABI encoding of the
/// arguments (alloy's, from the contract interface).
pub fn encode_submit_proof_of_work(
    job_id: &[u8; 32],
    tokens_claimed: &[u8; 32],
    proof_hash: &[u8; 32],
    proof_cid: &str,
    signature: &[u8],
    delta_cid: &str,
) -> Vec<u8> {
    submitProofOfWorkCall {
        jobId: U256::from_be_bytes(*job_id),
        tokensClaimed: U256::from_be_bytes(*tokens_claimed),
        proofHash: FixedBytes::from(*proof_hash),
        proofCID: proof_cid.to_owned(),
        signature: signature.to_vec().into(),
        deltaCID: delta_cid.to_owned(),
    }
    .abi_encode()
}

/// Multicodec code of the `raw` codec: the CID names plain bytes.
pub const CID_CODEC_RAW: u8 = 0x55;
/// Multihash code of sha2-256.
pub const MULTIHASH_SHA2_256: u8 = 0x12;

/// The IPFS CIDv1 naming `proof_bytes` stored as a single raw block: version
/// 1, codec `raw` (0x55), multihash sha2-256 (`0x12 0x20` + digest), in
/// multibase base32 (lower case, no padding, prefix `b`): the familiar
/// `bafkrei…` form.
///
/// Because the multihash is the same SHA-256 as `proofHash`, anyone can check
/// that the CID and the on-chain hash name the same bytes. (A file that IPFS
/// chunks into several blocks gets a different, dag-pb CID; this one is right
/// for content stored as one raw block, e.g. `ipfs add --raw-leaves` of data up
/// to the chunk size, or a content-addressed store keyed by this CID.)
pub fn proof_cid(proof_bytes: &[u8]) -> String {
    proof_cid_from_sha256(&sha256(proof_bytes))
}

/// The CID of [`proof_cid`] from the SHA-256 `digest` of the bytes (i.e. from
/// a `proofHash`), so a submission's hash and CID can be checked against each
/// other without the proof bytes.
pub fn proof_cid_from_sha256(digest: &[u8; 32]) -> String {
    let mut binary = Vec::with_capacity(4 + 32);
    binary.extend_from_slice(&[0x01, CID_CODEC_RAW, MULTIHASH_SHA2_256, 32]);
    binary.extend_from_slice(digest);
    let mut cid = String::with_capacity(1 + binary.len().div_ceil(5) * 8);
    cid.push('b');
    cid.push_str(&base32_lower_nopad(&binary));
    cid
}

/// RFC 4648 base32 (alphabet `a–z2–7`, lower case) without `=` padding.
fn base32_lower_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity((data.len() * 8).div_ceil(5));
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        // Keep only the bits not yet emitted (fewer than 5).
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, FixedBytes, U256};

    #[test]
    fn keccak256_is_ethereum_keccak_not_sha3() {
        // keccak256("") as used by Ethereum (NIST SHA3-256("") is a7ffc6f8…).
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(keccak256(b"abc"), *alloy_primitives::keccak256(b"abc"));
    }

    #[test]
    fn selector_value() {
        // The selector alloy's `sol!` derives from the interface file.
        assert_eq!(
            *SUBMIT_PROOF_OF_WORK_SELECTOR,
            submitProofOfWorkCall::SELECTOR
        );
        // Pinned, so a change to the signature text cannot go unnoticed.
        assert_eq!(*SUBMIT_PROOF_OF_WORK_SELECTOR, [0x94, 0xe5, 0xa8, 0x0d]);
        assert_eq!(
            SUBMIT_PROOF_OF_WORK_SIGNATURE,
            submitProofOfWorkCall::SIGNATURE
        );
    }

    fn sample_inputs() -> ([u8; 32], [u8; 20], [u8; 32], [u8; 32]) {
        let proof_hash: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        let host: [u8; 20] = std::array::from_fn(|i| 0xa0 + i as u8);
        let mut tokens = [0u8; 32];
        tokens[30] = 0x12;
        tokens[31] = 0x34;
        tokens[0] = 0x80; // a high bit, to catch sign or truncation errors
        let model_id: [u8; 32] = std::array::from_fn(|i| 0xff - i as u8);
        (proof_hash, host, tokens, model_id)
    }

    #[test]
    fn packed_layout_is_116_bytes_in_field_order() {
        let (proof_hash, host, tokens, model_id) = sample_inputs();
        let packed = proof_of_work_packed(&proof_hash, &host, &tokens, &model_id);
        assert_eq!(packed.len(), 116);
        assert_eq!(&packed[..32], &proof_hash);
        assert_eq!(&packed[32..52], &host);
        assert_eq!(&packed[52..84], &tokens);
        assert_eq!(&packed[84..116], &model_id);

        // Independently: alloy's `abi.encodePacked` of the Solidity types.
        let alloy_packed = (
            FixedBytes::<32>::from(proof_hash),
            Address::from(host),
            U256::from_be_bytes(tokens),
            FixedBytes::<32>::from(model_id),
        )
            .abi_encode_packed();
        assert_eq!(alloy_packed.len(), 116);
        assert_eq!(packed.as_slice(), alloy_packed.as_slice());
    }

    #[test]
    fn message_hash_known_answer() {
        let (proof_hash, host, tokens, model_id) = sample_inputs();
        let mut concatenated = Vec::new();
        concatenated.extend_from_slice(&proof_hash);
        concatenated.extend_from_slice(&host);
        concatenated.extend_from_slice(&tokens);
        concatenated.extend_from_slice(&model_id);
        let expected = alloy_primitives::keccak256(&concatenated);
        let message = proof_of_work_message(&proof_hash, &host, &tokens, &model_id);
        assert_eq!(message, *expected);

        // Each input is bound into the message.
        let mut other_host = host;
        other_host[19] ^= 1;
        assert_ne!(
            proof_of_work_message(&proof_hash, &other_host, &tokens, &model_id),
            message
        );
        let mut other_tokens = tokens;
        other_tokens[31] ^= 1;
        assert_ne!(
            proof_of_work_message(&proof_hash, &host, &other_tokens, &model_id),
            message
        );
    }

    #[test]
    fn eip191_digest_by_hand() {
        use sha3::{Digest as _, Keccak256};
        let message: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let mut hasher = Keccak256::new();
        hasher.update(b"\x19Ethereum Signed Message:\n32");
        hasher.update(message);
        let expected: [u8; 32] = hasher.finalize().into();
        assert_eq!(eip191_digest(&message), expected);
    }

    #[test]
    fn u256_from_u64_is_big_endian() {
        let word = u256_from_u64(0x0102_0304_0506_0708);
        assert_eq!(
            U256::from_be_bytes(word),
            U256::from(0x0102_0304_0506_0708u64)
        );
        assert_eq!(&word[..24], &[0u8; 24]);
    }

    #[test]
    fn u64_from_u256_round_trips_and_refuses_larger_words() {
        for value in [0, 1, 255, 1 << 40, u64::MAX - 1, u64::MAX] {
            assert_eq!(u64_from_u256(&u256_from_u64(value)), Some(value));
        }
        for byte in 0..24 {
            let mut word = u256_from_u64(5);
            word[byte] = 1;
            assert_eq!(u64_from_u256(&word), None, "byte {byte}");
        }
    }

    #[test]
    fn calldata_layout_by_hand() {
        let calldata = encode_submit_proof_of_work(
            &u256_from_u64(7),
            &u256_from_u64(1000),
            &[0x11; 32],
            "abc",
            &[0x22; 65],
            "",
        );
        let word = |i: usize| &calldata[4 + 32 * i..4 + 32 * (i + 1)];
        assert_eq!(&calldata[..4], &*SUBMIT_PROOF_OF_WORK_SELECTOR);
        assert_eq!(word(0), u256_from_u64(7));
        assert_eq!(word(1), u256_from_u64(1000));
        assert_eq!(word(2), [0x11; 32]);
        assert_eq!(word(3), u256_from_u64(192)); // proofCID after the 6-word head
        assert_eq!(word(4), u256_from_u64(192 + 64)); // + length word + 1 data word
        assert_eq!(word(5), u256_from_u64(256 + 32 + 96)); // + length + 3 data words
        assert_eq!(word(6), u256_from_u64(3));
        assert_eq!(&word(7)[..3], b"abc");
        assert_eq!(&word(7)[3..], &[0u8; 29]);
        assert_eq!(word(8), u256_from_u64(65));
        assert_eq!(&word(11)[1..], &[0u8; 31]);
        assert_eq!(word(12), u256_from_u64(0)); // empty deltaCID: length only
        assert_eq!(calldata.len(), 4 + 32 * 13);
    }

    /// A string of `len` bytes with multi-byte UTF-8 when the length allows.
    fn sample_string(len: usize, seed: u8) -> String {
        let mut s = String::new();
        while s.len() + 2 <= len && s.len() % 5 == 4 {
            s.push('é');
        }
        while s.len() < len {
            s.push(char::from(b'a' + (s.len() as u8 + seed) % 26));
        }
        assert_eq!(s.len(), len);
        s
    }

    #[test]
    fn calldata_decodes_with_alloy_for_many_lengths() {
        let lengths = [0usize, 1, 31, 32, 33, 100];
        let mut job_id = [0u8; 32];
        job_id[0] = 0xde;
        job_id[31] = 0x01;
        let tokens: [u8; 32] = std::array::from_fn(|i| i as u8);
        let proof_hash: [u8; 32] = std::array::from_fn(|i| 0x80 | i as u8);
        for &cid_len in &lengths {
            for &delta_len in &lengths {
                for sig_len in [65usize, 0, 64, 66] {
                    let proof_cid = sample_string(cid_len, 1);
                    let delta_cid = sample_string(delta_len, 2);
                    let signature: Vec<u8> = (0..sig_len).map(|i| (i * 3 + 1) as u8).collect();
                    let calldata = encode_submit_proof_of_work(
                        &job_id,
                        &tokens,
                        &proof_hash,
                        &proof_cid,
                        &signature,
                        &delta_cid,
                    );
                    let decoded = submitProofOfWorkCall::abi_decode(&calldata)
                        .unwrap_or_else(|e| panic!("{cid_len}/{delta_len}/{sig_len}: {e}"));
                    assert_eq!(decoded.jobId, U256::from_be_bytes(job_id));
                    assert_eq!(decoded.tokensClaimed, U256::from_be_bytes(tokens));
                    assert_eq!(decoded.proofHash, FixedBytes::from(proof_hash));
                    assert_eq!(decoded.proofCID, proof_cid);
                    assert_eq!(decoded.signature.as_ref(), signature.as_slice());
                    assert_eq!(decoded.deltaCID, delta_cid);
                    // Canonical: alloy re-encodes to the very same bytes.
                    assert_eq!(decoded.abi_encode(), calldata);
                }
            }
        }
    }

    #[test]
    fn proof_cid_matches_cid_crate() {
        for data in [&b""[..], b"hello world", &[0xab; 1000]] {
            let digest = sha256(data);
            let multihash = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
            let expected = cid::Cid::new_v1(0x55, multihash).to_string();
            assert_eq!(proof_cid(data), expected);
            assert_eq!(proof_cid_from_sha256(&digest), expected);
            assert!(expected.starts_with("bafkrei"), "{expected}");
        }
        // The well-known CID of the empty raw block.
        assert_eq!(
            proof_cid(b""),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn proof_cid_bytes_by_hand() {
        let data = b"proof bytes";
        let cid = proof_cid(data);
        let body = cid.strip_prefix('b').expect("multibase prefix b");
        // Decode the base32 by hand (RFC 4648, lower case, no padding).
        let mut bits = 0u32;
        let mut acc = 0u32;
        let mut bytes = Vec::new();
        for c in body.chars() {
            let v = "abcdefghijklmnopqrstuvwxyz234567"
                .find(c)
                .unwrap_or_else(|| panic!("not base32 lower: {c}")) as u32;
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        assert_eq!(acc, 0, "non-zero trailing bits");
        let mut expected = vec![0x01, 0x55, 0x12, 0x20];
        expected.extend_from_slice(&sha256(data));
        assert_eq!(bytes, expected);
        assert_eq!(body.len(), 58);
    }

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 section 10, lower-cased, padding removed.
        for (input, output) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower_nopad(input.as_bytes()), output);
        }
    }
}
