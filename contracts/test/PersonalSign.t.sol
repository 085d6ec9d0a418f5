// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";
import {PersonalSign} from "../src/PersonalSign.sol";

/// The marketplace's signature rule against the cases the node's Rust rule
/// is tested with too (test/vectors/signatures.json, written by the
/// `signature_vectors` unit test of crates/fabstir-node/src/chain/proof_of_work.rs):
/// v of 0, 1, 27 or 28, low s, and the signer each case expects (address(0)
/// for a refused signature).
contract PersonalSignTest is Test {
    string internal constant VECTORS = "test/vectors/signatures.json";

    /// `PersonalSign.signer` takes calldata, as the marketplace passes it.
    function signerOf(bytes32 message, bytes calldata signature) external pure returns (address) {
        return PersonalSign.signer(message, signature);
    }

    function test_theSharedSignatureVectors() public view {
        string memory json = vm.readFile(VECTORS);
        uint256 accepted;
        uint256 refused;
        uint256 i;
        for (; vm.keyExistsJson(json, _key(i, "")); ++i) {
            string memory name = vm.parseJsonString(json, _key(i, ".name"));
            bytes32 message = vm.parseJsonBytes32(json, _key(i, ".message"));
            bytes memory signature = vm.parseJsonBytes(json, _key(i, ".signature"));
            bool ok = vm.parseJsonBool(json, _key(i, ".accepted"));
            address expected = ok ? vm.parseJsonAddress(json, _key(i, ".signer")) : address(0);
            address signer = this.signerOf(message, signature);
            assertTrue(signer == expected, string.concat("case ", name, ": another signer than expected"));
            if (ok) {
                assertTrue(signer != address(0), string.concat("case ", name, ": an accepted case has a signer"));
                accepted++;
            } else {
                refused++;
            }
        }
        // Both kinds, and every v the rule names, are covered.
        assertTrue(accepted >= 4 && refused >= 8, "too few cases");
    }

    function _key(uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".cases[", toString(i), "]", field);
    }
}
