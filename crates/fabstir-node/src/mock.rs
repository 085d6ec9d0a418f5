//! The mock proof backend, for tests only: a "proof" that is a SHA-256
//! binding of the statement. Anyone can make one; it proves nothing, is
//! marked as mock wherever it appears, and is refused by the settlement
//! validator in production mode (and the node does not start with both).

use fabstir_zk::Statement;
use sha2::{Digest, Sha256};

/// Marker at the start of a mock proof.
pub const MOCK_MAGIC: &[u8; 8] = b"FZK-MOCK";

/// A mock proof: a SHA-256 binding of the statement. Anyone can make one; it
/// exists for tests and is refused in production.
pub fn mock_proof(statement: &Statement) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"fabstir mock proof v1");
    for element in statement.instance().to_field_elements() {
        hasher.update(fabstir_zk::statement::field_to_be(&element));
    }
    let mut out = MOCK_MAGIC.to_vec();
    out.extend_from_slice(&hasher.finalize());
    out
}
