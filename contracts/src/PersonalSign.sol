// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title The one rule for the host's EIP-191 signatures
/// @notice What FabstirMarketplace accepts as a `personal_sign` signature, and
/// what the node's `recover_personal_signer` (crates/fabstir-node/src/chain/proof_of_work.rs)
/// accepts too; contracts/test/vectors/signatures.json holds both to it
/// (test/PersonalSign.t.sol and the Rust unit test read the same cases).
library PersonalSign {
    /// Half the secp256k1 group order: a larger `s` is the malleable twin.
    uint256 internal constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The signer of `message` under the EIP-191 signature `r || s || v`
    /// (65 bytes), or address(0) when the signature is refused: another length,
    /// a `v` other than 27 or 28 (0 and 1 are read as 27 and 28), an `s` above
    /// HALF_ORDER, or an `r` and `s` no key recovers from.
    function signer(bytes32 message, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > HALF_ORDER) return address(0);
        bytes32 digest = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", message));
        return ecrecover(digest, v, r, s);
    }
}
