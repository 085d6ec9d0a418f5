//! Statement encoding and parsing: job ids, addresses, the JSON result form,
//! the 128-bit limb split, the commitment and the public inputs.

use crate::common;

use common::{host, sample_result};
use fabstir_zk::circuit::layout::instance;
use fabstir_zk::poseidon;
use fabstir_zk::statement::{field_from_be, field_to_be, limbs, FieldHex};
use fabstir_zk::{
    parse_address, Address, CircuitVersion, Digest32, Fr, HostId, InferenceResult, InputError,
    Instance, JobId, ModelRef, Statement,
};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// 2^256 - 1.
const MAX_DEC: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";
/// 2^256.
const OVERFLOW_DEC: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639936";
/// The BN254 scalar field modulus, big-endian hex.
const MODULUS_HEX: &str = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

fn modulus_be() -> [u8; 32] {
    hex::decode(MODULUS_HEX).unwrap().try_into().unwrap()
}

/// The field element with this big-endian value (must be canonical).
fn fe(be: [u8; 32]) -> Fr {
    field_from_be(&be).expect("canonical")
}

/// 2^bits as a field element.
fn pow2(bits: usize) -> Fr {
    let mut be = [0u8; 32];
    be[31 - bits / 8] = 1 << (bits % 8);
    fe(be)
}

fn u128_fe(v: u128) -> Fr {
    Fr::from_u128(v)
}

#[track_caller]
fn job(s: &str) -> JobId {
    JobId::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[track_caller]
fn job_err(s: &str) -> &'static str {
    match JobId::parse(s) {
        Err(InputError::JobId(reason)) => reason,
        other => panic!("{s:?}: expected InputError::JobId, got {other:?}"),
    }
}

fn be_with_tail(tail: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[32 - tail.len()..].copy_from_slice(tail);
    out
}

// ---------------------------------------------------------------------------
// JobId
// ---------------------------------------------------------------------------

#[test]
fn job_id_parses_decimal() {
    assert_eq!(job("0"), JobId([0; 32]));
    assert_eq!(job("1"), JobId(be_with_tail(&[1])));
    assert_eq!(job("255"), JobId(be_with_tail(&[0xff])));
    assert_eq!(job("256"), JobId(be_with_tail(&[1, 0])));
    assert_eq!(job("42"), JobId::from_u64(42));
    assert_eq!(job("18446744073709551615"), JobId::from_u64(u64::MAX));
    assert_eq!(
        job("18446744073709551616"),
        JobId(be_with_tail(&[1, 0, 0, 0, 0, 0, 0, 0, 0]))
    );
    // 2^128 = 340282366920938463463374607431768211456
    let mut two_128 = [0u8; 32];
    two_128[15] = 1;
    assert_eq!(
        job("340282366920938463463374607431768211456"),
        JobId(two_128)
    );
    assert_eq!(job(MAX_DEC), JobId([0xff; 32]));
    assert_eq!(
        job("123456789012345678901234567890").to_string(),
        "0x00000000000000000000000000000000000000018ee90ff6c373e0ee4e3f0ad2"
    );
}

/// `short()`: decimal below 2^64, else `0x` without leading zeros; the
/// `Display` form (stored, serialized) is unchanged.
#[test]
fn job_id_short_form_is_decimal_below_2_pow_64_else_trimmed_hex() {
    for (given, short) in [
        ("0", "0"),
        ("42", "42"),
        ("0x2a", "42"),
        (
            "0x000000000000000000000000000000000000000000000000000000000000002a",
            "42",
        ),
        ("18446744073709551615", "18446744073709551615"),
        ("18446744073709551616", "0x10000000000000000"),
        (
            "0xdeadbeef00000000000000000000000000000000",
            "0xdeadbeef00000000000000000000000000000000",
        ),
        (MAX_DEC, &format!("0x{}", "f".repeat(64))),
    ] {
        assert_eq!(job(given).short().to_string(), short, "{given}");
    }
    assert_eq!(
        JobId::from_u64(42).to_string(),
        "0x000000000000000000000000000000000000000000000000000000000000002a"
    );
    assert_eq!(format!("{:?}", JobId::from_u64(7).short()), "7");
}

#[test]
fn job_id_decimal_overflow_is_refused() {
    for s in [
        OVERFLOW_DEC,
        "115792089237316195423570985008687907853269984665640564039457584007913129639945",
        "1157920892373161954235709850086879078532699846656405640394575840079131296399350",
        &"9".repeat(78),
        &"1".repeat(200),
    ] {
        assert!(job_err(s).contains("2^256"), "{s}");
    }
    // 78 digits but below 2^256.
    assert_eq!(job(&format!("0{MAX_DEC}")), JobId([0xff; 32]));
}

#[test]
fn job_id_leading_zeros_are_accepted() {
    assert_eq!(job("007"), JobId::from_u64(7));
    assert_eq!(job("00"), JobId([0; 32]));
    assert_eq!(job(&"0".repeat(300)), JobId([0; 32]));
    assert_eq!(
        job(&format!("{}{MAX_DEC}", "0".repeat(100))),
        JobId([0xff; 32])
    );
    assert_eq!(job("0001").to_decimal(), "1");
}

#[test]
fn job_id_parses_hex_with_1_to_64_digits() {
    assert_eq!(job("0x0"), JobId([0; 32]));
    assert_eq!(job("0x1"), JobId(be_with_tail(&[1])));
    assert_eq!(job("0xf"), JobId(be_with_tail(&[0x0f])));
    assert_eq!(job("0x2a"), JobId::from_u64(42));
    assert_eq!(job("0X2A"), JobId::from_u64(42));
    assert_eq!(job("0xAbC"), JobId(be_with_tail(&[0x0a, 0xbc])));
    assert_eq!(job("0x100"), JobId(be_with_tail(&[1, 0])));
    for digits in 1..=64 {
        let s = format!("0x{}", "f".repeat(digits));
        let id = job(&s);
        // The value is 2^(4 * digits) - 1.
        let ones = digits * 4;
        for (i, byte) in id.0.iter().enumerate() {
            let low_bit = (31 - i) * 8;
            let expected = if low_bit + 8 <= ones {
                0xff
            } else if low_bit < ones {
                0x0f
            } else {
                0
            };
            assert_eq!(*byte, expected, "{s}: byte {i}");
        }
    }
    assert_eq!(job(&format!("0x{}", "ff".repeat(32))), JobId([0xff; 32]));
    assert_eq!(job(&format!("0x{}", "0".repeat(64))), JobId([0; 32]));
}

#[test]
fn job_id_hex_with_65_digits_or_none_is_refused() {
    for s in [
        format!("0x{}", "0".repeat(65)),
        format!("0x1{}", "0".repeat(64)),
        format!("0x{}", "f".repeat(80)),
    ] {
        assert!(job_err(&s).contains("1 to 64"), "{s}");
    }
    assert!(job_err("0x").contains("1 to 64"));
    assert!(job_err("0X").contains("1 to 64"));
}

#[test]
fn job_id_with_non_digit_is_refused() {
    for s in [
        "12a", "a", "-1", "+1", "1.0", "1e3", "1_000", "١٢", "１２", "0b101", "0o7", "1 2", "4\t2",
        "x1",
    ] {
        job_err(s);
    }
    for s in [
        "0xg", "0x-1", "0x+1", "0x 1", "0x1 2", "0x12g4", "0xé", "0x0x1",
    ] {
        job_err(s);
    }
}

#[test]
fn job_id_empty_is_refused() {
    assert!(job_err("").contains("empty"));
    assert!(job_err("   ").contains("empty"));
    assert!(job_err("\n\t").contains("empty"));
}

#[test]
fn job_id_surrounding_whitespace_is_trimmed() {
    assert_eq!(job(" 42"), JobId::from_u64(42));
    assert_eq!(job("42 "), JobId::from_u64(42));
    assert_eq!(job("\t42\n"), JobId::from_u64(42));
    assert_eq!(job(" 0x2a "), JobId::from_u64(42));
    // ... but not whitespace inside.
    job_err("4 2");
    job_err("0x2 a");
}

#[test]
fn job_id_to_decimal_round_trips() {
    assert_eq!(JobId([0; 32]).to_decimal(), "0");
    assert_eq!(JobId::from_u64(42).to_decimal(), "42");
    assert_eq!(JobId::from_u64(u64::MAX).to_decimal(), u64::MAX.to_string());
    assert_eq!(JobId([0xff; 32]).to_decimal(), MAX_DEC);
    for s in [
        "0",
        "1",
        "9",
        "10",
        "255",
        "256",
        "65535",
        "18446744073709551616",
        "123456789012345678901234567890",
        MAX_DEC,
    ] {
        assert_eq!(job(s).to_decimal(), s);
    }
    // Pseudo-random 256-bit values: bytes -> decimal -> bytes, and against u128 arithmetic.
    let mut state = [7u8; 32];
    for _ in 0..200 {
        state = Sha256::digest(state).into();
        let id = JobId(state);
        assert_eq!(job(&id.to_decimal()), id);
        assert_eq!(job(&id.to_string()), id);
        let mut low = [0u8; 32];
        low[16..].copy_from_slice(&state[16..]);
        assert_eq!(
            JobId(low).to_decimal(),
            u128::from_be_bytes(state[16..].try_into().unwrap()).to_string()
        );
    }
    // Display is 0x and 64 hex digits; FromStr is parse.
    assert_eq!(
        JobId::from_u64(1).to_string(),
        format!("0x{}1", "0".repeat(63))
    );
    assert_eq!("0x2a".parse::<JobId>().unwrap(), JobId::from_u64(42));
}

// ---------------------------------------------------------------------------
// Address
// ---------------------------------------------------------------------------

/// EIP-55 test vectors (mixed case) and all-caps / all-lower ones.
const EIP55_MIXED: [&str; 4] = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
];

#[test]
fn address_parses_lowercase_and_uppercase() {
    let lower = parse_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
    let upper = parse_address("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED").unwrap();
    assert_eq!(lower, upper);
    assert_eq!(lower.0[..4], [0x5a, 0xae, 0xb6, 0x05]);
    assert_eq!(lower.0[19], 0xed);
    for s in [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    ] {
        parse_address(s).unwrap();
    }
    parse_address("0xde709f2102306220921060314715629080e2fb77").unwrap();
    parse_address(&format!("0x{}", "1".repeat(40))).unwrap();
}

#[test]
fn address_parses_valid_eip55_mixed_case() {
    for s in EIP55_MIXED {
        let address = parse_address(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(address.to_checksum(None), s);
        assert_eq!(address.to_string(), s);
        assert_eq!(parse_address(&s.to_lowercase()).unwrap(), address);
    }
}

#[test]
fn address_with_invalid_checksum_is_refused() {
    for s in EIP55_MIXED {
        let digits: Vec<char> = s[2..].chars().collect();
        for i in 0..digits.len() {
            if !digits[i].is_ascii_alphabetic() {
                continue;
            }
            let mut bad = digits.clone();
            bad[i] = if bad[i].is_ascii_uppercase() {
                bad[i].to_ascii_lowercase()
            } else {
                bad[i].to_ascii_uppercase()
            };
            let bad: String = bad.into_iter().collect();
            let has_upper = bad.chars().any(|c| c.is_ascii_uppercase());
            let has_lower = bad.chars().any(|c| c.is_ascii_lowercase());
            if has_upper && has_lower {
                assert_eq!(
                    parse_address(&format!("0x{bad}")),
                    Err(InputError::AddressChecksum),
                    "0x{bad}"
                );
            }
        }
    }
}

#[test]
fn address_with_wrong_length_is_refused() {
    for digits in [0, 1, 38, 39, 41, 42, 64] {
        let s = format!("0x{}", "a".repeat(digits));
        assert_eq!(
            parse_address(&s),
            Err(InputError::HexLength {
                what: "marketplace address",
                expected: 40,
                found: digits
            }),
            "{s}"
        );
    }
}

#[test]
fn address_without_0x_is_refused() {
    for s in [
        "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "005aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "",
        "x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    ] {
        assert_eq!(
            parse_address(s),
            Err(InputError::MissingHexPrefix {
                what: "marketplace address"
            }),
            "{s:?}"
        );
    }
}

#[test]
fn address_with_non_hex_digit_is_refused() {
    let s = format!("0x{}g", "a".repeat(39));
    assert_eq!(
        parse_address(&s),
        Err(InputError::InvalidHex {
            what: "marketplace address"
        })
    );
    // 40 bytes but not 40 hex digits.
    let s = format!("0x{}é", "a".repeat(38));
    assert_eq!(
        parse_address(&s),
        Err(InputError::InvalidHex {
            what: "marketplace address"
        })
    );
}

// ---------------------------------------------------------------------------
// InferenceResult JSON
// ---------------------------------------------------------------------------

const MODEL_HASH: &str = "0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn base_json() -> Value {
    json!({
        "job_id": "42",
        "chain_id": 84532,
        "marketplace": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "model": "llama-3",
        "prompt": "hi",
        "response": "hello",
        "tokens_used": 20
    })
}

fn parse_json(v: &Value) -> Result<InferenceResult, InputError> {
    InferenceResult::from_json(serde_json::to_string(v).unwrap().as_bytes())
}

#[track_caller]
fn json_err(v: &Value) -> String {
    match parse_json(v) {
        Err(InputError::Json(msg)) => msg,
        other => panic!("{v}: expected InputError::Json, got {other:?}"),
    }
}

#[test]
fn result_with_model_name() {
    let r = parse_json(&base_json()).unwrap();
    assert_eq!(r.model, ModelRef::Name("llama-3".into()));
    assert_eq!(r.job_id, JobId::from_u64(42));
    assert_eq!(r.chain_id, 84532);
    assert_eq!((r.prompt.as_str(), r.response.as_str()), ("hi", "hello"));
    assert_eq!(r.tokens_used, 20);
    let statement = r.statement(host(1).host_id());
    assert_eq!(statement.tokens, 20);
    assert_eq!(statement.model_hash, Digest32::sha256(b"llama-3"));
    assert_eq!(statement.input_hash, Digest32::sha256(b"hi"));
    assert_eq!(statement.output_hash, Digest32::sha256(b"hello"));
    // Round trip through the JSON form.
    assert_eq!(
        InferenceResult::from_json(r.to_json().as_bytes()).unwrap(),
        r
    );
}

#[test]
fn result_with_model_hash() {
    let mut v = base_json();
    v.as_object_mut().unwrap().remove("model");
    v["model_hash"] = MODEL_HASH.into();
    let r = parse_json(&v).unwrap();
    assert_eq!(
        r.model,
        ModelRef::Hash(Digest32::parse("model_hash", MODEL_HASH).unwrap())
    );
    assert_eq!(
        r.statement(host(1).host_id()).model_hash.to_string(),
        MODEL_HASH
    );
    assert_eq!(
        InferenceResult::from_json(r.to_json().as_bytes()).unwrap(),
        r
    );
    // A malformed hash is a JSON error.
    v["model_hash"] = "0x1234".into();
    json_err(&v);
}

#[test]
fn result_with_model_and_model_hash_is_ambiguous() {
    let mut v = base_json();
    v["model_hash"] = MODEL_HASH.into();
    assert_eq!(parse_json(&v), Err(InputError::ModelAmbiguous));
    // Even with an empty name.
    v["model"] = "".into();
    assert_eq!(parse_json(&v), Err(InputError::ModelAmbiguous));
}

#[test]
fn result_without_model_is_missing_model() {
    let mut v = base_json();
    v.as_object_mut().unwrap().remove("model");
    assert_eq!(parse_json(&v), Err(InputError::ModelMissing));
    v["model"] = Value::Null;
    assert_eq!(parse_json(&v), Err(InputError::ModelMissing));
}

#[test]
fn result_with_empty_model_name_is_missing_model() {
    let mut v = base_json();
    v["model"] = "".into();
    assert_eq!(parse_json(&v), Err(InputError::ModelMissing));
}

#[test]
fn result_with_unknown_field_is_refused() {
    for field in ["extra", "Model", "job", "modelHash"] {
        let mut v = base_json();
        v[field] = 1.into();
        let msg = json_err(&v);
        assert!(
            msg.contains("unknown field") && msg.contains(field),
            "{field}: {msg}"
        );
    }
}

/// A key given twice is refused, so two readers cannot see different values.
#[test]
fn result_with_duplicate_field_is_refused() {
    for (field, value) in [
        ("job_id", "\"43\""),
        ("model", "\"other\""),
        ("prompt", "\"bye\""),
        ("chain_id", "1"),
    ] {
        let raw = serde_json::to_string(&base_json()).unwrap();
        let raw = format!("{{\"{field}\": {value}, {}", &raw[1..]);
        match InferenceResult::from_json(raw.as_bytes()) {
            Err(InputError::Json(msg)) => {
                assert!(
                    msg.contains(&format!("duplicate key \"{field}\" at $")),
                    "{field}: {msg}"
                )
            }
            other => panic!("{field}: expected Json, got {other:?} for {raw}"),
        }
    }
}

#[test]
fn result_with_missing_field_is_refused() {
    for field in ["job_id", "chain_id", "marketplace", "prompt", "response"] {
        let mut v = base_json();
        v.as_object_mut().unwrap().remove(field);
        let msg = json_err(&v);
        assert!(
            msg.contains("missing field") && msg.contains(field),
            "{field}: {msg}"
        );
    }
    assert!(matches!(
        InferenceResult::from_json(b"not json"),
        Err(InputError::Json(_))
    ));
    assert!(matches!(
        InferenceResult::from_json(b""),
        Err(InputError::Json(_))
    ));
    assert!(matches!(
        InferenceResult::from_json(b"[]"),
        Err(InputError::Json(_))
    ));
}

#[test]
fn result_job_id_as_number_or_string() {
    let mut v = base_json();
    for (value, expected) in [
        (json!(42), JobId::from_u64(42)),
        (json!(0), JobId::from_u64(0)),
        (json!(u64::MAX), JobId::from_u64(u64::MAX)),
        (json!("42"), JobId::from_u64(42)),
        (json!("0x2a"), JobId::from_u64(42)),
        (json!(MAX_DEC), JobId([0xff; 32])),
    ] {
        v["job_id"] = value.clone();
        assert_eq!(parse_json(&v).unwrap().job_id, expected, "{value}");
    }
    // Negative, fractional, too large for a JSON integer, or not a number.
    for value in [
        json!(-1),
        json!(1.5),
        json!(1e3),
        json!(true),
        json!(null),
        json!([1]),
        json!(""),
        json!(OVERFLOW_DEC),
    ] {
        v["job_id"] = value.clone();
        json_err(&v);
    }
    // 2^64 as a JSON number: must be given as a string.
    let raw = serde_json::to_string(&base_json())
        .unwrap()
        .replace("\"42\"", "18446744073709551616");
    assert!(
        matches!(
            InferenceResult::from_json(raw.as_bytes()),
            Err(InputError::Json(_))
        ),
        "{raw}"
    );
}

/// The reason a job id string was refused reaches the user.
#[test]
fn result_with_bad_job_id_string_says_why() {
    let mut v = base_json();
    v["job_id"] = OVERFLOW_DEC.into();
    let msg = json_err(&v);
    assert!(msg.contains("job_id") && msg.contains("2^256"), "{msg}");
    v["job_id"] = "12a".into();
    let msg = json_err(&v);
    assert!(msg.contains("job_id") && msg.contains("decimal"), "{msg}");
}

#[test]
fn result_chain_id_must_be_a_u64_number() {
    let mut v = base_json();
    for value in [
        json!(-1),
        json!(1.5),
        json!(84532.0),
        json!("84532"),
        json!(null),
        json!(true),
    ] {
        v["chain_id"] = value.clone();
        json_err(&v);
    }
    let raw = serde_json::to_string(&base_json())
        .unwrap()
        .replace("84532", "18446744073709551616");
    assert!(
        matches!(
            InferenceResult::from_json(raw.as_bytes()),
            Err(InputError::Json(_))
        ),
        "{raw}"
    );
    v["chain_id"] = json!(u64::MAX);
    assert_eq!(parse_json(&v).unwrap().chain_id, u64::MAX);
    v["chain_id"] = json!(0);
    assert_eq!(parse_json(&v).unwrap().chain_id, 0);
}

#[test]
fn result_marketplace_checksum_is_enforced_in_json() {
    let mut v = base_json();
    v["marketplace"] = EIP55_MIXED[0].into();
    assert_eq!(
        parse_json(&v).unwrap().marketplace,
        parse_address(EIP55_MIXED[0]).unwrap()
    );
    v["marketplace"] = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into();
    assert!(json_err(&v).contains("checksum"));
    v["marketplace"] = "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed".into();
    assert!(json_err(&v).contains("0x"));
}

// ---------------------------------------------------------------------------
// Limbs and field elements
// ---------------------------------------------------------------------------

#[test]
fn limbs_are_big_endian_128_bit_halves() {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    let (hi, lo) = limbs(&bytes);
    assert_eq!(
        hi,
        u128_fe(u128::from_be_bytes(bytes[..16].try_into().unwrap()))
    );
    assert_eq!(
        lo,
        u128_fe(u128::from_be_bytes(bytes[16..].try_into().unwrap()))
    );
    assert_eq!(limbs(&[0; 32]), (Fr::ZERO, Fr::ZERO));
    assert_eq!(limbs(&be_with_tail(&[1])), (Fr::ZERO, Fr::ONE));
    let mut top = [0u8; 32];
    top[15] = 1;
    assert_eq!(limbs(&top), (Fr::ONE, Fr::ZERO));
    let mut top = [0u8; 32];
    top[0] = 0x80;
    assert_eq!(limbs(&top), (pow2(127), Fr::ZERO));
}

#[test]
fn limbs_of_values_above_the_modulus_are_not_reduced() {
    let max = u128_fe(u128::MAX);
    assert_eq!(limbs(&[0xff; 32]), (max, max));
    // The modulus itself: limbs are its halves, not zero.
    let m = modulus_be();
    let (hi, lo) = limbs(&m);
    assert_eq!(
        hi,
        u128_fe(u128::from_be_bytes(m[..16].try_into().unwrap()))
    );
    assert_eq!(
        lo,
        u128_fe(u128::from_be_bytes(m[16..].try_into().unwrap()))
    );
    assert_ne!((hi, lo), (Fr::ZERO, Fr::ZERO));
    // Distinct 32-byte values have distinct limbs even when congruent mod p.
    let mut m_plus_1 = m;
    m_plus_1[31] += 1;
    assert_ne!(limbs(&m_plus_1), limbs(&be_with_tail(&[1])));
}

#[test]
fn field_from_be_rejects_the_modulus_and_above() {
    let m = modulus_be();
    assert_eq!(field_from_be(&m), None);
    let mut m_plus_1 = m;
    m_plus_1[31] += 1;
    assert_eq!(field_from_be(&m_plus_1), None);
    assert_eq!(field_from_be(&[0xff; 32]), None);
    let mut two_255 = [0u8; 32];
    two_255[0] = 0x80;
    assert_eq!(field_from_be(&two_255), None);
    // p - 1 is the largest canonical value.
    let mut m_minus_1 = m;
    m_minus_1[31] -= 1;
    assert_eq!(field_from_be(&m_minus_1), Some(-Fr::ONE));
    assert_eq!(field_to_be(&-Fr::ONE), m_minus_1);
    assert_eq!(field_from_be(&[0; 32]), Some(Fr::ZERO));
    assert_eq!(field_to_be(&Fr::ONE), be_with_tail(&[1]));
    // Round trip.
    for x in [Fr::from(12345u64), pow2(200), -Fr::from(7u64)] {
        assert_eq!(field_from_be(&field_to_be(&x)), Some(x));
    }
    // The same rule for parsed host ids and commitments.
    assert_eq!(
        HostId::parse(&format!("0x{MODULUS_HEX}")),
        Err(InputError::NotCanonical { what: "host id" })
    );
    assert_eq!(
        FieldHex::parse("commitment", &format!("0x{MODULUS_HEX}")),
        Err(InputError::NotCanonical { what: "commitment" })
    );
    assert_eq!(
        HostId::parse(&format!("0x{}", hex::encode(m_minus_1)))
            .unwrap()
            .0,
        -Fr::ONE
    );
}

// ---------------------------------------------------------------------------
// Statement commitment
// ---------------------------------------------------------------------------

fn base_statement() -> Statement {
    sample_result().statement(host(1).host_id())
}

#[track_caller]
fn assert_commitment_changes(what: &str, edit: impl FnOnce(&mut Statement)) {
    let base = base_statement();
    let mut changed = base;
    edit(&mut changed);
    assert_ne!(changed, base, "{what}: the edit changed nothing");
    assert_ne!(
        changed.commitment(),
        base.commitment(),
        "{what}: commitment unchanged"
    );
    assert_ne!(
        changed.instance().commitment,
        base.instance().commitment,
        "{what}"
    );
}

#[test]
fn commitment_is_poseidon_of_the_documented_inputs() {
    let s = base_statement();
    let half = |b: &[u8; 32], i: usize| {
        u128_fe(u128::from_be_bytes(
            b[16 * i..16 * i + 16].try_into().unwrap(),
        ))
    };
    let mut marketplace = [0u8; 32];
    marketplace[12..].copy_from_slice(s.marketplace.as_slice());
    // Version 2: chain id and tokens packed as chain_id + 2^64 * tokens.
    let packed = u128_fe(u128::from(s.chain_id) + (u128::from(s.tokens) << 64));
    let mut inputs = [
        packed,
        fe(marketplace),
        half(&s.job_id.0, 0),
        half(&s.job_id.0, 1),
        half(&s.model_hash.0, 0),
        half(&s.model_hash.0, 1),
        half(&s.input_hash.0, 0),
        half(&s.input_hash.0, 1),
        half(&s.output_hash.0, 0),
        half(&s.output_hash.0, 1),
        s.host_id.0,
    ];
    assert_eq!(s.commitment_inputs(), inputs);
    assert_eq!(s.commitment(), poseidon::hash11(&inputs));
    assert_eq!(
        s.commitment(),
        base_statement().commitment(),
        "deterministic"
    );
    assert_eq!(s.instance().commitment, FieldHex(s.commitment()));
    assert_eq!(s.instance().tokens, Some(s.tokens));
    // Version 1: the chain id alone; no tokens in the instance.
    inputs[0] = Fr::from(s.chain_id);
    assert_eq!(s.commitment_inputs_for(CircuitVersion::V1), inputs);
    let v1 = s.instance_for(CircuitVersion::V1);
    assert_eq!(v1.commitment, FieldHex(poseidon::hash11(&inputs)));
    assert_eq!(v1.tokens, None);
    // The hashes come from the result.
    let r = sample_result();
    assert_eq!(s.input_hash, Digest32::sha256(r.prompt.as_bytes()));
    assert_eq!(
        s.output_hash.0,
        <[u8; 32]>::from(Sha256::digest(r.response.as_bytes()))
    );
}

#[test]
fn commitment_binds_chain_id() {
    assert_commitment_changes("chain_id + 1", |s| s.chain_id += 1);
    assert_commitment_changes("chain_id = 0", |s| s.chain_id = 0);
    assert_commitment_changes("chain_id = u64::MAX", |s| s.chain_id = u64::MAX);
}

#[test]
fn commitment_binds_tokens() {
    assert_commitment_changes("tokens + 1", |s| s.tokens += 1);
    assert_commitment_changes("tokens = 0", |s| s.tokens = 0);
    assert_commitment_changes("tokens = u64::MAX", |s| s.tokens = u64::MAX);
    // The packing is injective: moving 2^64 between the halves is impossible
    // within u64, and swapping them changes the commitment.
    assert_commitment_changes("chain_id and tokens swapped", |s| {
        std::mem::swap(&mut s.chain_id, &mut s.tokens)
    });
    // Version 1 does not bind tokens.
    let base = base_statement();
    let mut changed = base;
    changed.tokens += 1;
    assert_eq!(
        changed.commitment_for(CircuitVersion::V1),
        base.commitment_for(CircuitVersion::V1)
    );
    assert_eq!(
        base.instance().differences(&changed.instance()),
        ["tokens", "commitment"]
    );
    assert_eq!(
        base.instance()
            .differences(&base.instance_for(CircuitVersion::V1)),
        ["tokens", "commitment"]
    );
}

#[test]
fn commitment_binds_marketplace() {
    assert_commitment_changes("marketplace last byte", |s| s.marketplace.0[19] ^= 1);
    assert_commitment_changes("marketplace first byte", |s| s.marketplace.0[0] ^= 0x80);
}

#[test]
fn commitment_binds_job_id() {
    assert_commitment_changes("job_id low limb", |s| s.job_id.0[31] ^= 1);
    assert_commitment_changes("job_id high limb", |s| s.job_id.0[0] ^= 1);
    assert_commitment_changes("job_id halves swapped", |s| {
        s.job_id = JobId::from_u64(5);
        s.job_id.0.rotate_left(16);
    });
}

#[test]
fn commitment_binds_model_hash() {
    assert_commitment_changes("model_hash low limb", |s| s.model_hash.0[31] ^= 1);
    assert_commitment_changes("model_hash high limb", |s| s.model_hash.0[0] ^= 1);
}

#[test]
fn commitment_binds_input_hash() {
    assert_commitment_changes("input_hash low limb", |s| s.input_hash.0[31] ^= 1);
    assert_commitment_changes("input_hash high limb", |s| s.input_hash.0[0] ^= 1);
    assert_commitment_changes("input and output swapped", |s| {
        std::mem::swap(&mut s.input_hash, &mut s.output_hash)
    });
}

#[test]
fn commitment_binds_output_hash() {
    assert_commitment_changes("output_hash low limb", |s| s.output_hash.0[31] ^= 1);
    assert_commitment_changes("output_hash high limb", |s| s.output_hash.0[0] ^= 1);
}

#[test]
fn commitment_binds_host_id() {
    assert_commitment_changes("host_id", |s| s.host_id = host(2).host_id());
    assert_commitment_changes("host_id + 1", |s| s.host_id = HostId(s.host_id.0 + Fr::ONE));
}

// ---------------------------------------------------------------------------
// Instance
// ---------------------------------------------------------------------------

#[test]
fn instance_field_elements_round_trip() {
    let base = base_statement().instance();
    let extremes = Instance {
        chain_id: u64::MAX,
        marketplace: Address::new([0xff; 20]),
        job_id: JobId([0xff; 32]),
        tokens: Some(u64::MAX),
        host_id: HostId(-Fr::ONE),
        commitment: FieldHex(-Fr::ONE),
    };
    let zeros = Instance {
        chain_id: 0,
        marketplace: Address::new([0; 20]),
        job_id: JobId([0; 32]),
        tokens: Some(0),
        host_id: HostId(Fr::ZERO),
        commitment: FieldHex(Fr::ZERO),
    };
    let v1 = base_statement().instance_for(CircuitVersion::V1);
    assert_eq!(v1.tokens, None);
    assert_eq!(v1.version(), CircuitVersion::V1);
    assert_eq!(base.version(), CircuitVersion::V2);
    for inst in [base, extremes, zeros, v1] {
        let elements = inst.to_field_elements();
        assert_eq!(elements.len(), inst.version().instance_count());
        if let Some(tokens) = inst.tokens {
            assert_eq!(elements[instance::TOKENS], Fr::from(tokens));
        }
        assert_eq!(Instance::from_field_elements(&elements).unwrap(), inst);
        assert_eq!(elements[instance::CHAIN_ID], Fr::from(inst.chain_id));
        let (hi, lo) = limbs(&inst.job_id.0);
        assert_eq!(
            (elements[instance::JOB_HI], elements[instance::JOB_LO]),
            (hi, lo)
        );
        assert_eq!(elements[instance::HOST_ID], inst.host_id.0);
        assert_eq!(elements[instance::COMMITMENT], inst.commitment.0);
    }
    assert_eq!(
        extremes.to_field_elements()[instance::MARKETPLACE],
        pow2(160) - Fr::ONE
    );
    assert_eq!(
        extremes.to_field_elements()[instance::JOB_HI],
        pow2(128) - Fr::ONE
    );
    // The JSON form round trips too; a version 1 instance has no tokens key.
    let json = serde_json::to_string(&base).unwrap();
    assert_eq!(serde_json::from_str::<Instance>(&json).unwrap(), base);
    let json = serde_json::to_string(&v1).unwrap();
    assert!(!json.contains("tokens"), "{json}");
    assert_eq!(serde_json::from_str::<Instance>(&json).unwrap(), v1);
}

#[test]
fn instance_of_another_length_is_refused() {
    let good = base_statement().instance().to_field_elements();
    for len in [0, 5, 8] {
        let mut elements = good.clone();
        elements.resize(len, Fr::ZERO);
        assert_eq!(
            Instance::from_field_elements(&elements),
            Err(InputError::InstanceCount { found: len })
        );
    }
}

#[test]
fn instance_elements_out_of_range_name_their_index() {
    let good = base_statement().instance().to_field_elements();
    let cases = [
        (instance::CHAIN_ID, "chain id", pow2(64)),
        (instance::CHAIN_ID, "chain id", -Fr::ONE),
        (instance::MARKETPLACE, "marketplace", pow2(160)),
        (instance::MARKETPLACE, "marketplace", -Fr::ONE),
        (instance::JOB_HI, "job id high limb", pow2(128)),
        (instance::JOB_HI, "job id high limb", -Fr::ONE),
        (instance::JOB_LO, "job id low limb", pow2(128)),
        (instance::JOB_LO, "job id low limb", pow2(200)),
        (instance::TOKENS, "tokens", pow2(64)),
        (instance::TOKENS, "tokens", pow2(64) + Fr::ONE),
        (instance::TOKENS, "tokens", -Fr::ONE),
    ];
    for (index, what, value) in cases {
        let mut elements = good.clone();
        elements[index] = value;
        assert_eq!(
            Instance::from_field_elements(&elements),
            Err(InputError::InstanceRange { index, what }),
            "{what}"
        );
    }
    // The largest in-range values are accepted.
    for (index, bits) in [
        (instance::CHAIN_ID, 64),
        (instance::MARKETPLACE, 160),
        (instance::JOB_HI, 128),
        (instance::JOB_LO, 128),
        (instance::TOKENS, 64),
    ] {
        let mut elements = good.clone();
        elements[index] = pow2(bits) - Fr::ONE;
        Instance::from_field_elements(&elements).unwrap_or_else(|e| panic!("index {index}: {e}"));
    }
    // Host id and commitment are full field elements.
    let mut elements = good.clone();
    elements[instance::HOST_ID] = -Fr::ONE;
    elements[instance::COMMITMENT] = -Fr::ONE;
    Instance::from_field_elements(&elements).unwrap();
}

#[test]
fn instance_json_refuses_non_canonical_commitment_and_unknown_fields() {
    let base = base_statement().instance();
    let mut v: Value = serde_json::to_value(base).unwrap();
    v["commitment"] = format!("0x{MODULUS_HEX}").into();
    assert!(serde_json::from_value::<Instance>(v.clone()).is_err());
    let mut v: Value = serde_json::to_value(base).unwrap();
    v["host_id"] = format!("0x{}", "ff".repeat(32)).into();
    assert!(serde_json::from_value::<Instance>(v).is_err());
    let mut v: Value = serde_json::to_value(base).unwrap();
    v["extra"] = 1.into();
    assert!(serde_json::from_value::<Instance>(v).is_err());
}
