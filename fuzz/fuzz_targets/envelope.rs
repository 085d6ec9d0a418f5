//! Arbitrary bytes into both envelope parsers.
//!
//! Neither parser may panic (libFuzzer reports a panic as a crash). Whatever
//! one of them accepts must survive re-serialisation: the binary form is
//! canonical, so it must give back the input byte for byte; the JSON form is
//! not (whitespace, hex case, field order), so the envelope must come back
//! equal and the re-serialised JSON must be a fixed point.

#![no_main]

use fabstir_zk::ProofEnvelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ProofEnvelope::from_bytes(data) {
        Ok(envelope) => {
            assert_eq!(
                envelope.to_bytes(),
                data,
                "binary envelope does not re-serialise to its input"
            );
            let json = envelope.to_json();
            assert_eq!(
                ProofEnvelope::from_json(json.as_bytes()).as_ref(),
                Ok(&envelope),
                "binary -> JSON -> envelope"
            );
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
    match ProofEnvelope::from_json(data) {
        Ok(envelope) => {
            let json = envelope.to_json();
            let again =
                ProofEnvelope::from_json(json.as_bytes()).expect("re-serialised JSON parses");
            assert_eq!(again, envelope, "JSON -> envelope -> JSON -> envelope");
            assert_eq!(
                again.to_json(),
                json,
                "re-serialised JSON is not a fixed point"
            );
            assert_eq!(
                ProofEnvelope::from_bytes(&envelope.to_bytes()).as_ref(),
                Ok(&envelope),
                "JSON -> binary -> envelope"
            );
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
