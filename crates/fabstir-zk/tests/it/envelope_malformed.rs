//! Malformed proof envelopes, binary and JSON.
//!
//! Every kind of damage must give its own typed [`EnvelopeError`] (never a
//! panic), no allocation may be sized by a length the input merely claims,
//! and no mutation of a valid envelope may be both accepted and verified
//! unless it changed nothing.

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use common::{host, proving_key, sample_result};
use fabstir_zk::envelope::{
    header_len, ENVELOPE_FORMAT_VERSION, HEADER_LEN, MAX_BINARY_LEN, MAX_JSON_LEN,
};
use fabstir_zk::statement::field_from_be;
use fabstir_zk::{
    CircuitVersion, EnvelopeError, Instance, ProofEnvelope, ProofLayout, VerifyError, VerifyingKey,
    CIRCUIT_VERSION,
};
use halo2_axiom::halo2curves::bn256::{Fq, Fr};
use halo2_axiom::halo2curves::ff::PrimeField;
use proptest::prelude::*;
use proptest::sample::Index;
use rand::SeedableRng;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Allocation tracking: the largest single allocation made by the current
// thread while tracking is on.

struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialised thread locals, which never
// allocate.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Runs `f` and returns its result with the largest single allocation it made.
fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    TRACKING.with(|on| on.set(true));
    let result = f();
    TRACKING.with(|on| on.set(false));
    (result, LARGEST.with(Cell::get))
}

/// An allocation bound for rejecting input by a length check alone: nothing
/// (or next to nothing) may be allocated.
const NO_REAL_ALLOCATION: usize = 1024;

// ---------------------------------------------------------------------------
// Fixture: one real proof, made once per test binary with a seeded RNG so that
// every run sees the same bytes.

struct Fixture {
    envelope: ProofEnvelope,
    bytes: Vec<u8>,
    json: String,
    instance: Instance,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let host = host(7);
        let statement = sample_result().statement(host.host_id());
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(0xf2_7a11);
        let envelope =
            ProofEnvelope::create(proving_key(), &statement, &host, rng).expect("proving succeeds");
        let bytes = envelope.to_bytes();
        let json = envelope.to_json();
        Fixture {
            envelope,
            bytes,
            json,
            instance: statement.instance(),
        }
    })
}

fn vk() -> &'static VerifyingKey {
    proving_key().verifying_key()
}

// ---------------------------------------------------------------------------
// Layout of the binary form.

const POINT: usize = 64;
const SCALAR: usize = 32;
const VK_ID_AT: usize = 8;
const LENGTH_AT: usize = HEADER_LEN - 4;

fn layout() -> ProofLayout {
    ProofLayout::get()
}

/// Offset of public input `index` in the binary envelope.
fn instance_at(index: usize) -> usize {
    40 + 32 * index
}

fn point_count() -> usize {
    layout().leading_points + layout().trailing_points
}

/// Offset within the proof of point `k` (leading points, then trailing points).
fn point_offset(k: usize) -> usize {
    let l = layout();
    if k < l.leading_points {
        k * POINT
    } else {
        l.leading_points * POINT + l.scalars * SCALAR + (k - l.leading_points) * POINT
    }
}

/// Offset within the proof of scalar `j`.
fn scalar_offset(j: usize) -> usize {
    layout().leading_points * POINT + j * SCALAR
}

/// The first point, a middle leading point, the first trailing point and the last point.
fn sample_points() -> [usize; 4] {
    let l = layout();
    [0, l.leading_points / 2, l.leading_points, point_count() - 1].map(point_offset)
}

/// The first, a middle and the last scalar.
fn sample_scalars() -> [usize; 3] {
    let n = layout().scalars;
    [0, n / 2, n - 1].map(scalar_offset)
}

fn is_point_offset(offset: usize) -> bool {
    (0..point_count()).any(|k| point_offset(k) == offset)
}

fn is_scalar_offset(offset: usize) -> bool {
    (0..layout().scalars).any(|j| scalar_offset(j) == offset)
}

fn declared_length(bytes: &[u8]) -> Option<usize> {
    declared_length_at(bytes, HEADER_LEN)
}

/// The declared proof length of an envelope whose header is `header_len` bytes.
fn declared_length_at(bytes: &[u8], header_len: usize) -> Option<usize> {
    let be: [u8; 4] = bytes.get(header_len - 4..header_len)?.try_into().ok()?;
    Some(u32::from_be_bytes(be) as usize)
}

// ---------------------------------------------------------------------------
// 256-bit big-endian arithmetic for building boundary values.

type Be = [u8; 32];

fn modulus<F: PrimeField>() -> Be {
    let digits = F::MODULUS
        .strip_prefix("0x")
        .expect("modulus is 0x-prefixed hex");
    let mut out = [0u8; 32];
    hex::decode_to_slice(format!("{digits:0>64}"), &mut out).expect("modulus is hex");
    out
}

fn add_be(a: &Be, b: &Be) -> Be {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

fn sub_be(a: &Be, b: &Be) -> Be {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(v < 0);
        if v < 0 {
            v += 256;
        }
        out[i] = v as u8;
    }
    out
}

fn small(v: u8) -> Be {
    let mut out = [0u8; 32];
    out[31] = v;
    out
}

/// `2^bits` as 32 big-endian bytes.
fn pow2(bits: usize) -> Be {
    let mut out = [0u8; 32];
    out[31 - bits / 8] = 1 << (bits % 8);
    out
}

fn is_canonical_fq(be: &[u8]) -> bool {
    let mut le: Be = be.try_into().expect("32 bytes");
    le.reverse();
    Option::<Fq>::from(Fq::from_repr(le)).is_some()
}

// ---------------------------------------------------------------------------
// Helpers for the binary form.

fn mutated(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = fixture().bytes.clone();
    edit(&mut bytes);
    bytes
}

fn set(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// Sets the 32-byte word at `offset` within the proof of a valid envelope.
fn with_proof_word(offset: usize, value: &Be) -> Vec<u8> {
    mutated(|b| set(b, HEADER_LEN + offset, value))
}

fn proof_word(offset: usize) -> Be {
    fixture().envelope.proof[offset..offset + 32]
        .try_into()
        .expect("32 bytes")
}

fn binary_err(bytes: &[u8]) -> EnvelopeError {
    ProofEnvelope::from_bytes(bytes).expect_err("malformed binary envelope must be refused")
}

fn json_err(json: &[u8]) -> EnvelopeError {
    ProofEnvelope::from_json(json).expect_err("malformed JSON envelope must be refused")
}

/// Parses a well-formed but wrong envelope and returns its verification error.
fn parses_but_fails_verification(bytes: &[u8]) -> VerifyError {
    let envelope = ProofEnvelope::from_bytes(bytes).expect("well-formed envelope parses");
    envelope
        .verify(vk(), &fixture().instance)
        .expect_err("altered proof must not verify")
}

// ---------------------------------------------------------------------------
// The fixture and the layout.

#[test]
fn fixture_is_a_valid_envelope_of_the_documented_layout() {
    let f = fixture();
    let l = layout();
    // The layout follows the circuit (not pinned here, so that a circuit
    // change does not break this file), but its arithmetic is fixed.
    assert!(l.leading_points > 1 && l.scalars > 2 && l.trailing_points == 2);
    assert_eq!(
        l.proof_len(),
        (l.leading_points + l.trailing_points) * POINT + l.scalars * SCALAR
    );
    assert_eq!(HEADER_LEN, 4 + 4 + 32 + 7 * 32 + 4);
    assert_eq!(l.envelope_len(), HEADER_LEN + l.proof_len());
    assert_eq!(f.envelope.proof.len(), l.proof_len());
    assert_eq!(f.bytes.len(), l.envelope_len());
    assert_eq!(&f.bytes[..8], b"FZKP\x01\x02\x00\x00");
    assert_eq!(declared_length(&f.bytes), Some(l.proof_len()));
    assert_eq!(ProofEnvelope::from_bytes(&f.bytes), Ok(f.envelope.clone()));
    f.envelope
        .verify(vk(), &f.instance)
        .expect("fixture verifies");
    // The boundary values used below are what they claim to be.
    assert!(field_from_be(&modulus::<Fr>()).is_none());
    assert!(field_from_be(&sub_be(&modulus::<Fr>(), &small(1))).is_some());
    assert!(!is_canonical_fq(&modulus::<Fq>()));
    assert!(is_canonical_fq(&sub_be(&modulus::<Fq>(), &small(1))));
}

// ---------------------------------------------------------------------------
// Length: empty, too large, truncated, trailing bytes.

#[test]
fn empty_input_is_empty() {
    assert_eq!(binary_err(&[]), EnvelopeError::Empty);
    assert!(matches!(json_err(b""), EnvelopeError::Json(_)));
}

#[test]
fn oversized_binary_input_is_refused_by_its_length_without_allocating() {
    let f = fixture();
    let _ = layout(); // initialise the layout outside the measured calls
    for len in [MAX_BINARY_LEN + 1, MAX_BINARY_LEN + 4096, 16 << 20] {
        // A valid envelope followed by padding: only the length is wrong.
        let mut bytes = f.bytes.clone();
        bytes.resize(len, 0);
        let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_bytes(&bytes));
        assert_eq!(
            result,
            Err(EnvelopeError::TooLarge {
                found: len,
                limit: MAX_BINARY_LEN
            })
        );
        assert!(
            largest < NO_REAL_ALLOCATION,
            "{len} bytes: allocated {largest} bytes"
        );
    }
    // Exactly at the limit the length is examined, and the excess is trailing bytes.
    let mut bytes = f.bytes.clone();
    bytes.resize(MAX_BINARY_LEN, 0);
    assert_eq!(
        binary_err(&bytes),
        EnvelopeError::TrailingBytes {
            extra: MAX_BINARY_LEN - f.bytes.len()
        }
    );
}

#[test]
fn truncation_at_every_offset_is_refused() {
    let full = &fixture().bytes;
    for n in 0..full.len() {
        let expected = match n {
            0 => EnvelopeError::Empty,
            n if n < HEADER_LEN => EnvelopeError::Truncated {
                needed: HEADER_LEN,
                found: n,
            },
            n => EnvelopeError::Truncated {
                needed: full.len(),
                found: n,
            },
        };
        assert_eq!(binary_err(&full[..n]), expected, "truncated to {n} bytes");
    }
}

#[test]
fn truncated_input_with_a_wrong_magic_is_bad_magic() {
    for n in [4, 5, 39, HEADER_LEN - 1, HEADER_LEN, 1000] {
        let bytes = mutated(|b| {
            b[0] = b'X';
            b.truncate(n);
        });
        assert_eq!(binary_err(&bytes), EnvelopeError::BadMagic, "{n} bytes");
    }
    // Shorter than the magic: a prefix of it is a truncation, anything else
    // is not an envelope at all.
    for short in [&b"F"[..], b"FZ", b"FZK"] {
        assert_eq!(
            binary_err(short),
            EnvelopeError::Truncated {
                needed: HEADER_LEN,
                found: short.len()
            }
        );
    }
    for short in [&b"X"[..], b"FX", b"XYZ"] {
        assert_eq!(binary_err(short), EnvelopeError::BadMagic, "{short:?}");
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let f = fixture();
    for extra in [1usize, 2, 31, 64, 1000] {
        for fill in [0x00u8, 0xff] {
            let bytes = mutated(|b| b.extend(std::iter::repeat_n(fill, extra)));
            assert_eq!(
                binary_err(&bytes),
                EnvelopeError::TrailingBytes { extra },
                "{extra} x {fill:#04x}"
            );
        }
    }
    // A second copy of the envelope appended to the first.
    let doubled = [f.bytes.as_slice(), f.bytes.as_slice()].concat();
    assert_eq!(
        binary_err(&doubled),
        EnvelopeError::TrailingBytes {
            extra: f.bytes.len()
        }
    );
}

// ---------------------------------------------------------------------------
// Header fields.

#[test]
fn wrong_magic_is_bad_magic() {
    for i in 0..4 {
        for value in [0x00u8, b'X', b'F' ^ 0x20, 0xff] {
            let bytes = mutated(|b| b[i] = value);
            if bytes[..4] == *b"FZKP" {
                continue;
            }
            assert_eq!(
                binary_err(&bytes),
                EnvelopeError::BadMagic,
                "magic byte {i} = {value:#04x}"
            );
        }
    }
    assert_eq!(
        binary_err(&mutated(|b| set(b, 0, b"fzkp"))),
        EnvelopeError::BadMagic
    );
    assert_eq!(
        binary_err(&vec![0u8; fixture().bytes.len()]),
        EnvelopeError::BadMagic
    );
    assert_eq!(
        binary_err(fixture().json.as_bytes()),
        EnvelopeError::BadMagic
    );
}

#[test]
fn unsupported_format_version_is_refused() {
    for version in [0u8, 2, 0x7f, 0xff] {
        let bytes = mutated(|b| b[4] = version);
        assert_eq!(
            binary_err(&bytes),
            EnvelopeError::UnsupportedVersion(version)
        );
    }
}

#[test]
fn unsupported_circuit_version_is_refused() {
    for circuit in [0u8, CIRCUIT_VERSION + 1, 0xff] {
        let bytes = mutated(|b| b[5] = circuit);
        assert_eq!(
            binary_err(&bytes),
            EnvelopeError::UnsupportedCircuit(circuit)
        );
    }
}

#[test]
fn nonzero_flags_or_reserved_byte_is_refused() {
    for value in [0x01u8, 0x02, 0x80, 0xff] {
        assert_eq!(
            binary_err(&mutated(|b| b[6] = value)),
            EnvelopeError::ReservedFlags(value),
            "flags"
        );
        assert_eq!(
            binary_err(&mutated(|b| b[7] = value)),
            EnvelopeError::ReservedFlags(value),
            "reserved"
        );
    }
    let both = mutated(|b| {
        b[6] = 0x01;
        b[7] = 0x10;
    });
    assert!(matches!(binary_err(&both), EnvelopeError::ReservedFlags(v) if v != 0));
}

#[test]
fn declared_proof_length_must_be_the_circuits() {
    let f = fixture();
    let expected = layout().proof_len();
    let max_binary = u32::try_from(MAX_BINARY_LEN).expect("fits");
    for declared in [
        0u32,
        1,
        32,
        64,
        expected as u32 - 1,
        expected as u32 + 1,
        2 * expected as u32,
        max_binary,
        u32::MAX,
    ] {
        // Only the declaration is wrong; the body is the real proof.
        let bytes = mutated(|b| set(b, LENGTH_AT, &declared.to_be_bytes()));
        let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_bytes(&bytes));
        assert_eq!(
            result,
            Err(EnvelopeError::ProofLength {
                expected,
                found: declared as usize
            }),
            "declared {declared}"
        );
        assert!(
            largest < NO_REAL_ALLOCATION,
            "declared {declared}: allocated {largest} bytes"
        );
    }
    // The declaration agrees with the body, but the body is the wrong size.
    for body_len in [0usize, 1, expected - 1, expected + 1, expected + 64] {
        let mut bytes = f.bytes[..HEADER_LEN].to_vec();
        set(&mut bytes, LENGTH_AT, &(body_len as u32).to_be_bytes());
        bytes.extend(f.envelope.proof.iter().copied().cycle().take(body_len));
        assert_eq!(
            binary_err(&bytes),
            EnvelopeError::ProofLength {
                expected,
                found: body_len
            }
        );
    }
}

// ---------------------------------------------------------------------------
// Public inputs.

fn assert_instance_error(err: EnvelopeError, want_index: usize, want_reason: &str, what: &str) {
    match err {
        EnvelopeError::Instance { index, reason } => {
            assert_eq!(index, want_index, "{what}: wrong index");
            assert!(
                reason.contains(want_reason),
                "{what}: reason {reason:?} should mention {want_reason:?}"
            );
        }
        other => panic!("{what}: expected Instance {{ index: {want_index} }}, got {other:?}"),
    }
}

#[test]
fn non_canonical_public_inputs_are_refused_with_their_index() {
    let r = modulus::<Fr>();
    for index in 0..6 {
        for (name, value) in [
            ("all 0xff", [0xff; 32]),
            ("modulus", r),
            ("modulus + 1", add_be(&r, &small(1))),
        ] {
            let bytes = mutated(|b| set(b, instance_at(index), &value));
            assert_instance_error(
                binary_err(&bytes),
                index,
                "canonical",
                &format!("input {index} = {name}"),
            );
        }
    }
}

#[test]
fn out_of_range_public_inputs_are_refused_with_their_index() {
    let f = fixture();
    let r_minus_1 = sub_be(&modulus::<Fr>(), &small(1));
    // (index, bits, field name in InstanceMismatch)
    for (index, bits, field) in [
        (0, 64, "chain_id"),
        (1, 160, "marketplace"),
        (2, 128, "job_id"),
        (3, 128, "job_id"),
    ] {
        for (name, value) in [
            ("2^bits", pow2(bits)),
            ("2^(bits+1)", pow2(bits + 1)),
            ("2^248", pow2(248)),
            ("r - 1", r_minus_1),
        ] {
            let bytes = mutated(|b| set(b, instance_at(index), &value));
            assert_instance_error(
                binary_err(&bytes),
                index,
                "range",
                &format!("input {index} = {name}"),
            );
        }
        // The largest value in range parses, and is then refused for not being the statement.
        let largest = sub_be(&pow2(bits), &small(1));
        let bytes = mutated(|b| set(b, instance_at(index), &largest));
        let envelope = ProofEnvelope::from_bytes(&bytes).expect("largest in-range value parses");
        assert_eq!(&envelope.to_bytes(), &bytes);
        assert_eq!(
            envelope.verify(vk(), &f.instance),
            Err(VerifyError::InstanceMismatch { field })
        );
    }
    let envelope =
        ProofEnvelope::from_bytes(&mutated(|b| set(b, instance_at(0), &pow2(63)))).unwrap();
    assert_eq!(envelope.instance.chain_id, 1 << 63);
    // host_id and commitment may be any field element.
    for (index, field) in [(4, "host_id"), (5, "commitment")] {
        let bytes = mutated(|b| set(b, instance_at(index), &r_minus_1));
        let envelope = ProofEnvelope::from_bytes(&bytes).expect("r - 1 is a field element");
        assert_eq!(
            envelope.verify(vk(), &f.instance),
            Err(VerifyError::InstanceMismatch { field })
        );
    }
}

// ---------------------------------------------------------------------------
// Proof elements.

#[test]
fn non_canonical_proof_scalars_are_refused_at_their_offset() {
    let r = modulus::<Fr>();
    for offset in sample_scalars() {
        for (name, value) in [
            ("modulus", r),
            ("modulus + 1", add_be(&r, &small(1))),
            ("all 0xff", [0xff; 32]),
        ] {
            assert_eq!(
                binary_err(&with_proof_word(offset, &value)),
                EnvelopeError::NonCanonicalScalar { offset },
                "scalar at {offset} = {name}"
            );
        }
        // Canonical but wrong scalars are well-formed; the proof just fails.
        for value in [
            sub_be(&r, &small(1)),
            [0; 32],
            add_be(&proof_word(offset), &small(1)),
        ] {
            let err = parses_but_fails_verification(&with_proof_word(offset, &value));
            assert_eq!(err, VerifyError::Invalid, "scalar at {offset}");
        }
    }
}

#[test]
fn non_canonical_point_coordinates_are_refused_at_their_offset() {
    let p = modulus::<Fq>();
    for offset in sample_points() {
        for (name, coordinate) in [
            ("modulus", p),
            ("modulus + 1", add_be(&p, &small(1))),
            ("all 0xff", [0xff; 32]),
        ] {
            for (axis, at) in [("x", offset), ("y", offset + 32)] {
                assert_eq!(
                    binary_err(&with_proof_word(at, &coordinate)),
                    EnvelopeError::NonCanonicalPoint { offset },
                    "point at {offset}: {axis} = {name}"
                );
            }
        }
    }
}

#[test]
fn identity_points_are_refused_at_their_offset() {
    for offset in sample_points() {
        let bytes = mutated(|b| set(b, HEADER_LEN + offset, &[0; 64]));
        assert_eq!(binary_err(&bytes), EnvelopeError::IdentityPoint { offset });
    }
}

#[test]
fn off_curve_points_are_refused_at_their_offset() {
    for offset in sample_points() {
        let x = proof_word(offset);
        let y = proof_word(offset + 32);
        let y_plus_1 = add_be(&y, &small(1));
        let x_plus_1 = add_be(&x, &small(1));
        assert!(
            is_canonical_fq(&y_plus_1) && is_canonical_fq(&x_plus_1),
            "fixture point at {offset} is near the modulus"
        );
        for (name, (new_x, new_y)) in [
            ("y + 1", (x, y_plus_1)),
            ("x + 1", (x_plus_1, y)),
            ("(0, 1)", (small(0), small(1))),
            ("(1, 0)", (small(1), small(0))),
        ] {
            let bytes = mutated(|b| {
                set(b, HEADER_LEN + offset, &new_x);
                set(b, HEADER_LEN + offset + 32, &new_y);
            });
            assert_eq!(
                binary_err(&bytes),
                EnvelopeError::PointNotOnCurve { offset },
                "point at {offset}: {name}"
            );
        }
    }
}

#[test]
fn valid_but_wrong_points_parse_and_fail_verification() {
    let p = modulus::<Fq>();
    for offset in sample_points() {
        let y = proof_word(offset + 32);
        // The negated point and the generator (1, 2) are on the curve.
        let negated = with_proof_word(offset + 32, &sub_be(&p, &y));
        let generator = mutated(|b| {
            set(b, HEADER_LEN + offset, &small(1));
            set(b, HEADER_LEN + offset + 32, &small(2));
        });
        for (name, bytes) in [("negated", negated), ("generator", generator)] {
            assert_eq!(
                parses_but_fails_verification(&bytes),
                VerifyError::Invalid,
                "point at {offset}: {name}"
            );
        }
    }
}

#[test]
fn wrong_vk_id_parses_but_is_an_unknown_verifying_key() {
    let f = fixture();
    for edit in [0usize, 31] {
        let bytes = mutated(|b| b[VK_ID_AT + edit] ^= 0x01);
        let envelope = ProofEnvelope::from_bytes(&bytes).expect("any vk_id is well-formed");
        assert_ne!(envelope.vk_id, f.envelope.vk_id);
        assert_eq!(
            envelope.verify(vk(), &f.instance),
            Err(VerifyError::UnknownVerifyingKey {
                expected: vk().id().to_string(),
                found: envelope.vk_id.to_string()
            })
        );
    }
}

/// Every single flipped bit of the header either is refused by the parser or,
/// where the field has no structure (vk_id, host_id, commitment, in-range
/// bits), is refused by verification.
#[test]
fn every_flipped_header_bit_is_refused() {
    let f = fixture();
    for at in 0..HEADER_LEN {
        for bit in 0..8 {
            let bytes = mutated(|b| b[at] ^= 1 << bit);
            match ProofEnvelope::from_bytes(&bytes) {
                Ok(envelope) => {
                    assert!(
                        envelope.verify(vk(), &f.instance).is_err(),
                        "byte {at} bit {bit} accepted"
                    );
                }
                Err(err) => {
                    let field_ok = match err {
                        EnvelopeError::BadMagic => at < 4,
                        EnvelopeError::UnsupportedVersion(_) => at == 4,
                        EnvelopeError::UnsupportedCircuit(_) => at == 5,
                        EnvelopeError::ReservedFlags(_) => at == 6 || at == 7,
                        EnvelopeError::Instance { index, .. } => {
                            (instance_at(index)..instance_at(index + 1)).contains(&at)
                        }
                        EnvelopeError::ProofLength { .. } => (LENGTH_AT..HEADER_LEN).contains(&at),
                        _ => false,
                    };
                    assert!(
                        field_ok,
                        "byte {at} bit {bit}: error {err:?} names the wrong field"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Allocation.

#[test]
fn parsing_allocates_only_the_proof() {
    let f = fixture();
    let _ = layout();
    let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_bytes(&f.bytes));
    assert!(result.is_ok());
    // The copy of the proof is the largest allocation, and the tracker sees it
    // (so the bounds asserted elsewhere are not vacuous).
    assert_eq!(
        largest,
        layout().proof_len(),
        "valid envelope: largest allocation"
    );
    // Refused headers allocate nothing.
    for bytes in [
        mutated(|b| b[0] = 0),
        mutated(|b| b[4] = 9),
        mutated(|b| set(b, instance_at(2), &[0xff; 32])),
        mutated(|b| b.truncate(100)),
    ] {
        let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_bytes(&bytes));
        assert!(result.is_err());
        assert!(
            largest < NO_REAL_ALLOCATION,
            "refused header: allocated {largest} bytes"
        );
    }
}

// ---------------------------------------------------------------------------
// JSON form.

fn json_value() -> Value {
    serde_json::from_str(&fixture().json).expect("fixture JSON is JSON")
}

fn json_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = json_value();
    edit(&mut value);
    serde_json::to_vec(&value).expect("serialises")
}

fn json_with_proof(proof: &str) -> Vec<u8> {
    json_with(|v| v["proof"] = Value::String(proof.to_string()))
}

fn proof_hex() -> String {
    hex::encode(&fixture().envelope.proof)
}

fn assert_json_error(err: EnvelopeError, needle: &str, what: &str) {
    match err {
        EnvelopeError::Json(message) => assert!(
            message.contains(needle),
            "{what}: message {message:?} should mention {needle:?}"
        ),
        other => panic!("{what}: expected Json, got {other:?}"),
    }
}

#[test]
fn json_round_trips() {
    let f = fixture();
    let parsed = ProofEnvelope::from_json(f.json.as_bytes()).expect("fixture JSON parses");
    assert_eq!(parsed, f.envelope);
    assert_eq!(parsed.to_json(), f.json);
    parsed
        .verify(vk(), &f.instance)
        .expect("round-tripped envelope verifies");
    // Whitespace and field order do not matter; hex digits are case-insensitive.
    let compact = serde_json::to_vec(&json_value()).unwrap();
    assert_eq!(ProofEnvelope::from_json(&compact), Ok(f.envelope.clone()));
    let upper = json_with_proof(&format!("0x{}", proof_hex().to_uppercase()));
    assert_eq!(ProofEnvelope::from_json(&upper), Ok(f.envelope.clone()));
    // Both forms describe the same envelope.
    assert_eq!(
        ProofEnvelope::from_bytes(&parsed.to_bytes()),
        Ok(f.envelope.clone())
    );
}

#[test]
fn invalid_json_is_a_json_error() {
    let f = fixture();
    for bad in [
        &b"{"[..],
        b"}",
        b"null",
        b"[]",
        b"42",
        b"\"FZKP\"",
        b"{\"format\": 1,}",
        b"\xff\xfe",
        b"{'format': 1}",
    ] {
        assert!(
            matches!(json_err(bad), EnvelopeError::Json(_)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(
        matches!(json_err(&f.bytes), EnvelopeError::Json(_)),
        "binary envelope given as JSON"
    );
    let mut trailing = f.json.clone().into_bytes();
    trailing.extend_from_slice(b" x");
    assert!(matches!(json_err(&trailing), EnvelopeError::Json(_)));
    let doubled = [f.json.as_bytes(), f.json.as_bytes()].concat();
    assert!(matches!(json_err(&doubled), EnvelopeError::Json(_)));
    // Every truncation of a valid JSON envelope.
    for n in 0..f.json.len() {
        assert!(
            matches!(json_err(&f.json.as_bytes()[..n]), EnvelopeError::Json(_)),
            "JSON truncated to {n} bytes"
        );
    }
}

#[test]
fn json_unknown_field_is_refused() {
    let top = json_with(|v| v["extra"] = Value::from(1));
    assert_json_error(json_err(&top), "unknown field", "top-level extra field");
    let nested = json_with(|v| v["instance"]["extra"] = Value::from("x"));
    assert_json_error(
        json_err(&nested),
        "unknown field",
        "extra field in instance",
    );
}

#[test]
fn json_missing_field_is_refused() {
    for field in ["format", "circuit", "vk_id", "instance", "proof"] {
        let json = json_with(|v| {
            v.as_object_mut().unwrap().remove(field);
        });
        assert_json_error(json_err(&json), &format!("missing field `{field}`"), field);
    }
    for field in ["chain_id", "marketplace", "job_id", "host_id", "commitment"] {
        let json = json_with(|v| {
            v["instance"].as_object_mut().unwrap().remove(field);
        });
        assert_json_error(json_err(&json), &format!("missing field `{field}`"), field);
    }
}

#[test]
fn json_duplicate_field_is_refused() {
    let json = fixture().json.replacen('{', "{\"format\": 1,", 1);
    assert_json_error(
        json_err(json.as_bytes()),
        "duplicate key \"format\" at $",
        "duplicate format",
    );
    // Nested, and a key the envelope does not know: refused for the repeat.
    let json = fixture()
        .json
        .replacen("\"instance\": {", "\"instance\": {\"x\": 1, \"x\": 2, ", 1);
    assert_json_error(
        json_err(json.as_bytes()),
        "duplicate key \"x\" at $.instance",
        "duplicate nested key",
    );
}

#[test]
fn json_wrong_types_are_refused() {
    for (field, value) in [
        ("format", Value::from("1")),
        ("format", Value::from(256)),
        ("format", Value::from(-1)),
        ("format", Value::from(1.5)),
        ("circuit", Value::Null),
        ("proof", Value::from(7)),
        ("proof", Value::Array(vec![])),
        ("instance", Value::from("x")),
        ("vk_id", Value::from("0x12")),
    ] {
        let json = json_with(|v| v[field] = value.clone());
        assert!(
            matches!(json_err(&json), EnvelopeError::Json(_)),
            "{field} = {value}"
        );
    }
}

#[test]
fn json_unsupported_versions_are_refused() {
    for version in [0u8, 2, 255] {
        let json = json_with(|v| v["format"] = Value::from(version));
        assert_eq!(json_err(&json), EnvelopeError::UnsupportedVersion(version));
    }
    for circuit in [0u8, CIRCUIT_VERSION + 1, 255] {
        let json = json_with(|v| v["circuit"] = Value::from(circuit));
        assert_eq!(json_err(&json), EnvelopeError::UnsupportedCircuit(circuit));
    }
}

#[test]
fn json_proof_without_0x_is_refused() {
    let digits = proof_hex();
    for (name, proof) in [
        ("no prefix", digits.clone()),
        ("x prefix", format!("x{digits}")),
        ("leading space", format!(" 0x{digits}")),
        ("empty", String::new()),
    ] {
        assert_json_error(json_err(&json_with_proof(&proof)), "0x", name);
    }
}

#[test]
fn json_proof_with_non_hex_digits_is_refused() {
    let digits = proof_hex();
    for (at, bad) in [
        (0usize, "g"),
        (100, "z"),
        (digits.len() - 1, " "),
        (2000, "-"),
    ] {
        let mut proof = digits.clone();
        proof.replace_range(at..at + 1, bad);
        assert_json_error(
            json_err(&json_with_proof(&format!("0x{proof}"))),
            "hex",
            &format!("{bad:?} at {at}"),
        );
    }
    // A two-byte character in place of two digits keeps the byte length right.
    let mut proof = digits.clone();
    proof.replace_range(10..12, "é");
    assert_json_error(
        json_err(&json_with_proof(&format!("0x{proof}"))),
        "hex",
        "two-byte character",
    );
}

#[test]
fn json_proof_of_odd_length_is_refused_as_such() {
    let digits = proof_hex();
    // One digit too few or too many: an odd digit count, named as such
    // (not a length error that would have to round the byte count).
    for proof in [format!("0x{}", &digits[1..]), format!("0x{digits}0")] {
        assert_json_error(
            json_err(&json_with_proof(&proof)),
            "odd number of hex digits",
            "odd length",
        );
    }
    // A two-byte character in place of one digit: odd byte length.
    let mut proof = digits.clone();
    proof.replace_range(10..11, "é");
    assert_json_error(
        json_err(&json_with_proof(&format!("0x{proof}"))),
        "odd number of hex digits",
        "two-byte character",
    );
}

#[test]
fn json_proof_of_wrong_length_is_refused() {
    let expected = layout().proof_len();
    let digits = proof_hex();
    for (name, proof, found) in [
        ("empty", String::new(), 0),
        ("one byte short", digits[2..].to_string(), expected - 1),
        ("one byte long", format!("{digits}00"), expected + 1),
        ("doubled", digits.repeat(2), 2 * expected),
    ] {
        let json = json_with_proof(&format!("0x{proof}"));
        assert_eq!(
            json_err(&json),
            EnvelopeError::ProofLength { expected, found },
            "{name}"
        );
    }
    // A long proof that still fits the JSON limit is refused before it is decoded.
    let huge = json_with_proof(&format!("0x{}", "ab".repeat(30_000)));
    assert!(huge.len() <= MAX_JSON_LEN);
    let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_json(&huge));
    assert_eq!(
        result,
        Err(EnvelopeError::ProofLength {
            expected,
            found: 30_000
        })
    );
    assert!(
        largest <= huge.len() + NO_REAL_ALLOCATION,
        "allocated {largest} bytes for {} bytes of JSON",
        huge.len()
    );
}

#[test]
fn json_proof_elements_are_checked_like_binary() {
    let digits = proof_hex();
    let word = |offset: usize, value: &Be| {
        let mut proof = digits.clone();
        proof.replace_range(2 * offset..2 * offset + 64, &hex::encode(value));
        json_with_proof(&format!("0x{proof}"))
    };
    let [first_scalar, _, last_scalar] = sample_scalars();
    assert_eq!(
        json_err(&word(last_scalar, &[0xff; 32])),
        EnvelopeError::NonCanonicalScalar {
            offset: last_scalar
        }
    );
    assert_eq!(
        json_err(&word(first_scalar, &modulus::<Fr>())),
        EnvelopeError::NonCanonicalScalar {
            offset: first_scalar
        }
    );
    let last_point = point_offset(point_count() - 1);
    assert_eq!(
        json_err(&word(last_point, &modulus::<Fq>())),
        EnvelopeError::NonCanonicalPoint { offset: last_point }
    );
    let mut proof = digits.clone();
    proof.replace_range(0..128, &"0".repeat(128));
    assert_eq!(
        json_err(&json_with_proof(&format!("0x{proof}"))),
        EnvelopeError::IdentityPoint { offset: 0 }
    );
    let y = proof_word(32);
    assert_eq!(
        json_err(&word(32, &add_be(&y, &small(1)))),
        EnvelopeError::PointNotOnCurve { offset: 0 }
    );
}

#[test]
fn json_invalid_public_inputs_are_refused() {
    let r_hex = format!("0x{}", hex::encode(modulus::<Fr>()));
    for (field, value) in [
        ("commitment", Value::from(r_hex.clone())),
        ("host_id", Value::from(r_hex)),
        ("chain_id", Value::from(-1)),
        ("chain_id", Value::from(1.0)),
        // Mixed case with a wrong EIP-55 checksum (the right one is 0x5FbDB2...).
        (
            "marketplace",
            Value::from("0x5Fbdb2315678afecb367f032d93f642f64180aa3"),
        ),
        ("marketplace", Value::from("0x1234")),
        ("job_id", Value::from(format!("0x{}", "1".repeat(65)))),
        ("job_id", Value::from("12a")),
    ] {
        let json = json_with(|v| v["instance"][field] = value.clone());
        assert!(
            matches!(json_err(&json), EnvelopeError::Json(_)),
            "{field} = {value}"
        );
    }
    // 2^64 does not fit chain_id (serde_json::Value cannot hold it, so edit the text).
    let json = fixture().json.replacen(
        "\"chain_id\": 84532",
        "\"chain_id\": 18446744073709551616",
        1,
    );
    assert_ne!(json, fixture().json, "fixture JSON has chain_id 84532");
    assert!(
        matches!(json_err(json.as_bytes()), EnvelopeError::Json(_)),
        "chain_id = 2^64"
    );
}

#[test]
fn json_wrong_vk_id_parses_but_is_an_unknown_verifying_key() {
    let f = fixture();
    let json = json_with(|v| v["vk_id"] = Value::from(format!("0x{}", "00".repeat(32))));
    let envelope = ProofEnvelope::from_json(&json).expect("any vk_id is well-formed");
    assert_eq!(
        envelope.verify(vk(), &f.instance),
        Err(VerifyError::UnknownVerifyingKey {
            expected: vk().id().to_string(),
            found: envelope.vk_id.to_string()
        })
    );
}

#[test]
fn oversized_json_is_refused_by_its_length_without_allocating() {
    let f = fixture();
    // Padding with whitespace up to the limit is still accepted ...
    let mut at_limit = f.json.clone().into_bytes();
    at_limit.resize(MAX_JSON_LEN, b' ');
    assert_eq!(ProofEnvelope::from_json(&at_limit), Ok(f.envelope.clone()));
    // ... one byte more is not, whatever the content.
    for len in [MAX_JSON_LEN + 1, 16 << 20] {
        let mut bytes = f.json.clone().into_bytes();
        bytes.resize(len, b' ');
        let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_json(&bytes));
        assert_eq!(
            result,
            Err(EnvelopeError::TooLarge {
                found: len,
                limit: MAX_JSON_LEN
            })
        );
        assert!(
            largest < NO_REAL_ALLOCATION,
            "{len} bytes: allocated {largest} bytes"
        );
    }
}

// ---------------------------------------------------------------------------
// Property tests: random mutations of a valid envelope.

/// One edit of a byte string. `focus` confines the position to the part of
/// the input before the proof, which random positions would rarely hit.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: Index, bit: u8 },
    Overwrite { at: Index, byte: u8 },
    Insert { at: Index, bytes: Vec<u8> },
    Delete { at: Index, len: usize },
    Truncate { at: Index },
}

fn edit(byte: BoxedStrategy<u8>) -> impl Strategy<Value = (bool, Edit)> {
    let edit = prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        3 => (any::<Index>(), byte.clone()).prop_map(|(at, byte)| Edit::Overwrite { at, byte }),
        2 => (any::<Index>(), prop::collection::vec(byte, 1..=4)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        2 => (any::<Index>(), 1usize..=4).prop_map(|(at, len)| Edit::Delete { at, len }),
        1 => any::<Index>().prop_map(|at| Edit::Truncate { at }),
    ];
    (any::<bool>(), edit)
}

fn apply(bytes: &mut Vec<u8>, focus_len: usize, (focus, edit): &(bool, Edit)) {
    let span = |len: usize| if *focus { len.min(focus_len) } else { len };
    match edit {
        Edit::Flip { at, bit } if !bytes.is_empty() => {
            let i = at.index(span(bytes.len()));
            bytes[i] ^= 1 << bit;
        }
        Edit::Overwrite { at, byte } if !bytes.is_empty() => {
            let i = at.index(span(bytes.len()));
            bytes[i] = *byte;
        }
        Edit::Insert { at, bytes: new } => {
            let i = at.index(span(bytes.len()) + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Edit::Delete { at, len } if !bytes.is_empty() => {
            let i = at.index(span(bytes.len()));
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
        Edit::Truncate { at } => {
            let i = at.index(span(bytes.len()) + 1);
            bytes.truncate(i);
        }
        _ => {}
    }
}

fn binary_byte() -> BoxedStrategy<u8> {
    prop_oneof![4 => any::<u8>(), 1 => Just(0x00), 1 => Just(0xff), 1 => Just(0x01)].boxed()
}

fn json_byte() -> BoxedStrategy<u8> {
    let alphabet = b"0123456789abcdefABCDEFxX\"{}[],: \n\\-+.eEnul".to_vec();
    prop_oneof![4 => prop::sample::select(alphabet), 1 => any::<u8>()].boxed()
}

/// The error must describe the input: the field it names is actually wrong.
fn check_binary_error(
    input: &[u8],
    original: &[u8],
    err: &EnvelopeError,
) -> Result<(), TestCaseError> {
    let l = layout();
    // The header's length follows the circuit version byte (a version 1
    // envelope has one public input fewer).
    let hl = input
        .get(5)
        .and_then(|v| CircuitVersion::from_u8(*v))
        .map_or(HEADER_LEN, header_len);
    let changed = |start: usize, len: usize| {
        input.get(start..start + len) != original.get(start..start + len)
    };
    let proof_word = |offset: usize, len: usize| input.get(hl + offset..hl + offset + len);
    let describes_input = match *err {
        EnvelopeError::Empty => input.is_empty(),
        EnvelopeError::TooLarge { found, limit } => {
            found == input.len() && limit == MAX_BINARY_LEN && found > limit
        }
        EnvelopeError::Truncated { needed, found } => {
            found == input.len() && found < needed && (needed == hl || needed == hl + l.proof_len())
        }
        // Short non-magic input is BadMagic too: the bytes present must
        // differ from the magic's start.
        EnvelopeError::BadMagic => {
            !input.is_empty() && input[..input.len().min(4)] != b"FZKP"[..input.len().min(4)]
        }
        EnvelopeError::UnsupportedVersion(v) => {
            input.get(4) == Some(&v) && v != ENVELOPE_FORMAT_VERSION
        }
        EnvelopeError::UnsupportedCircuit(v) => {
            input.get(5) == Some(&v) && CircuitVersion::from_u8(v).is_none()
        }
        EnvelopeError::ReservedFlags(v) => input.len() > 7 && v == input[6] | input[7] && v != 0,
        EnvelopeError::ProofLength { expected, found } => {
            expected == l.proof_len()
                && found != expected
                && declared_length_at(input, hl) == Some(found)
        }
        EnvelopeError::TrailingBytes { extra } => {
            extra > 0 && input.len() == hl + l.proof_len() + extra
        }
        EnvelopeError::Instance { index, .. } => index < 7 && changed(instance_at(index), 32),
        EnvelopeError::InstanceVersion { .. } => false,
        EnvelopeError::NonCanonicalScalar { offset } => {
            is_scalar_offset(offset)
                && changed(hl + offset, SCALAR)
                && proof_word(offset, SCALAR)
                    .is_some_and(|w| field_from_be(w.try_into().unwrap()).is_none())
        }
        EnvelopeError::NonCanonicalPoint { offset } => {
            is_point_offset(offset)
                && changed(hl + offset, POINT)
                && proof_word(offset, POINT)
                    .is_some_and(|w| !is_canonical_fq(&w[..32]) || !is_canonical_fq(&w[32..]))
        }
        EnvelopeError::PointNotOnCurve { offset } => {
            is_point_offset(offset) && changed(hl + offset, POINT)
        }
        EnvelopeError::IdentityPoint { offset } => {
            is_point_offset(offset)
                && proof_word(offset, POINT).is_some_and(|w| w.iter().all(|b| *b == 0))
        }
        EnvelopeError::Json(_) => false,
    };
    prop_assert!(
        describes_input,
        "error {:?} does not describe the input ({} bytes)",
        err,
        input.len()
    );
    Ok(())
}

fn check_binary_mutation(input: &[u8]) -> Result<(), TestCaseError> {
    let f = fixture();
    let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_bytes(input));
    prop_assert!(
        largest <= layout().proof_len(),
        "parsing allocated {} bytes",
        largest
    );
    match result {
        Ok(envelope) => {
            prop_assert_eq!(
                &envelope.to_bytes()[..],
                input,
                "the binary encoding must be canonical"
            );
            match envelope.verify(vk(), &f.instance) {
                Ok(()) => prop_assert_eq!(
                    input,
                    &f.bytes[..],
                    "a mutation that changed the envelope verified"
                ),
                Err(err) => prop_assert!(
                    !matches!(err, VerifyError::Malformed(_)),
                    "parsed, then malformed: {:?}",
                    err
                ),
            }
        }
        Err(err) => check_binary_error(input, &f.bytes, &err)?,
    }
    Ok(())
}

fn check_json_mutation(input: &[u8]) -> Result<(), TestCaseError> {
    let f = fixture();
    let (result, largest) = largest_allocation_during(|| ProofEnvelope::from_json(input));
    prop_assert!(
        largest <= 2 * input.len() + NO_REAL_ALLOCATION,
        "parsing allocated {} bytes",
        largest
    );
    match result {
        Ok(envelope) => {
            prop_assert_eq!(
                ProofEnvelope::from_json(envelope.to_json().as_bytes()),
                Ok(envelope.clone())
            );
            prop_assert_eq!(
                ProofEnvelope::from_bytes(&envelope.to_bytes()),
                Ok(envelope.clone())
            );
            match envelope.verify(vk(), &f.instance) {
                Ok(()) => prop_assert_eq!(
                    &envelope,
                    &f.envelope,
                    "a mutation that changed the envelope verified"
                ),
                Err(err) => prop_assert!(
                    !matches!(err, VerifyError::Malformed(_)),
                    "parsed, then malformed: {:?}",
                    err
                ),
            }
        }
        Err(err) => {
            let plausible = match err {
                EnvelopeError::Json(_) | EnvelopeError::ProofLength { .. } => true,
                EnvelopeError::UnsupportedVersion(v) => v != ENVELOPE_FORMAT_VERSION,
                EnvelopeError::UnsupportedCircuit(v) => CircuitVersion::from_u8(v).is_none(),
                // "circuit": 1 with the version 2 instance (tokens).
                EnvelopeError::InstanceVersion { circuit, .. } => circuit != CIRCUIT_VERSION,
                EnvelopeError::NonCanonicalScalar { offset } => is_scalar_offset(offset),
                EnvelopeError::NonCanonicalPoint { offset }
                | EnvelopeError::PointNotOnCurve { offset }
                | EnvelopeError::IdentityPoint { offset } => is_point_offset(offset),
                // Binary-only errors and TooLarge (the edits are small).
                _ => false,
            };
            prop_assert!(plausible, "unexpected error for JSON input: {:?}", err);
        }
    }
    Ok(())
}

/// 256 cases by default (well under a second); `PROPTEST_CASES=N` for a longer run.
/// Failures are not persisted to a regressions file: proptest prints the
/// shrunk edit list, which is enough to reproduce one.
fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn mutated_binary_envelope_is_refused_or_unchanged(edits in prop::collection::vec(edit(binary_byte()), 1..=4)) {
        let mut bytes = fixture().bytes.clone();
        for e in &edits {
            apply(&mut bytes, HEADER_LEN, e);
        }
        check_binary_mutation(&bytes)?;
    }

    #[test]
    fn mutated_json_envelope_is_refused_or_unchanged(edits in prop::collection::vec(edit(json_byte()), 1..=4)) {
        let json = &fixture().json;
        let before_proof = json.find("\"proof\"").expect("fixture JSON has a proof") + 16;
        let mut bytes = json.clone().into_bytes();
        for e in &edits {
            apply(&mut bytes, before_proof, e);
        }
        check_json_mutation(&bytes)?;
    }
}

/// A newer envelope is reported as newer even when its header is shorter
/// than this version's.
#[test]
fn versions_are_checked_as_soon_as_present() {
    assert_eq!(
        binary_err(b"FZKP\x02"),
        EnvelopeError::UnsupportedVersion(2)
    );
    assert_eq!(
        binary_err(b"FZKP\x01\x07\x00"),
        EnvelopeError::UnsupportedCircuit(7)
    );
}
