//! Reading inputs with bounds, writing outputs without overwriting.

use std::path::Path;

use fabstir_zk::{BatchError, BatchProof, InferenceResult, ProofEnvelope};

use super::Failure;

/// Largest inference result file accepted.
pub const MAX_RESULT_BYTES: u64 = 16 << 20;

/// Reads at most `limit` bytes of `path`, refusing larger files
/// (`fabstir_zk::fsutil::read_bounded`, with the command's failure codes).
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    fabstir_zk::fsutil::read_bounded(path, limit).map_err(|e| match e {
        fabstir_zk::KeyError::TooLarge { len, limit, .. } => Failure::input(
            "input_too_large",
            format!(
                "{what} {} is {len} bytes; the limit is {limit}",
                path.display()
            ),
        ),
        e => Failure::input("unreadable_input", format!("cannot read {what}: {e}")),
    })
}

/// Reads and parses an inference result JSON file.
pub fn read_result(path: &Path) -> Result<InferenceResult, Failure> {
    let bytes = read_bounded(path, MAX_RESULT_BYTES, "result")?;
    InferenceResult::from_json(&bytes)
        .map_err(|e| Failure::input("malformed_result", format!("{}: {e}", path.display())))
}

/// Reads a proof envelope, JSON or binary.
pub fn read_proof(path: &Path) -> Result<ProofEnvelope, Failure> {
    let bytes = read_bounded(path, fabstir_zk::envelope::MAX_JSON_LEN as u64, "proof")?;
    let parsed =
        if bytes.first() == Some(&b'{') || bytes.iter().take(16).any(|b| b.is_ascii_whitespace()) {
            ProofEnvelope::from_json(&bytes)
        } else {
            ProofEnvelope::from_bytes(&bytes)
        };
    parsed.map_err(|e| Failure::input("malformed_proof", format!("{}: {e}", path.display())))
}

/// Reads a batch proof: its binary form (FZK-BP1), or a text file of its
/// `0x` hex form. A declared size outside 1..=236 is
/// `unsupported_batch_size`; anything else malformed is `malformed_proof`.
pub fn read_batch(path: &Path) -> Result<BatchProof, Failure> {
    use fabstir_zk::batch::encoding::{MAGIC, MAX_ENCODED_BYTES};
    let limit = 2 * MAX_ENCODED_BYTES as u64 + 16;
    let bytes = read_bounded(path, limit, "batch proof")?;
    let parsed = if bytes.starts_with(MAGIC) {
        BatchProof::from_bytes(&bytes)
    } else {
        match std::str::from_utf8(&bytes) {
            Ok(text) => BatchProof::from_hex(text),
            Err(_) => Err(BatchError::Encoding("not a batch proof (wrong magic)")),
        }
    };
    parsed.map_err(|e| {
        let code = match e {
            BatchError::Size { .. } => "unsupported_batch_size",
            _ => "malformed_proof",
        };
        Failure::input(code, format!("{}: {e}", path.display()))
    })
}

/// Writes a new file (never overwriting), synced to disk.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    fabstir_zk::fsutil::write_new(path, bytes, 0o644).map_err(|e| {
        Failure::other(
            "write_failed",
            format!("cannot write {}: {e}", path.display()),
        )
    })
}
