// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Assertions for forge tests, without forge-std (which cannot be fetched offline).
/// A test function that reverts fails, so each assertion reverts with its message.
abstract contract Test {
    function assertTrue(bool condition, string memory message) internal pure {
        require(condition, message);
    }

    function assertEq(uint256 actual, uint256 expected, string memory message) internal pure {
        if (actual != expected) {
            revert(string.concat(message, ": got ", toString(actual), ", expected ", toString(expected)));
        }
    }

    function toString(uint256 value) internal pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) digits++;
        bytes memory text = new bytes(digits);
        for (; value != 0; value /= 10) text[--digits] = bytes1(uint8(48 + value % 10));
        return string(text);
    }
}
