// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";

/// The BN254 precompiles that a KZG verifier calls (ecAdd 0x06, ecMul 0x07, ecPairing 0x08)
/// give the known answers under this project's evm_version.
contract PrecompilesTest is Test {
    uint256 constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    // G1 generator (1, 2) and 2*G1.
    uint256 constant G1_X = 1;
    uint256 constant G1_Y = 2;
    uint256 constant G1_2X = 0x030644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd3;
    uint256 constant G1_2Y = 0x15ed738c0e0a7c92e7845f96b2ae9c0a68a6a449e3538fc7ff3ebf7a5a18a2c4;

    // G2 generator, in the precompile's order: x.imaginary, x.real, y.imaginary, y.real.
    uint256 constant G2_XI = 11559732032986387107991004021392285783925812861821192530917403151452391805634;
    uint256 constant G2_XR = 10857046999023057135944570762232829481370756359578518086990519993285655852781;
    uint256 constant G2_YI = 4082367875863433681332203403145435568316851327593401208105741076214120093531;
    uint256 constant G2_YR = 8495653923123431417604973247489272438418190587263600148770280649306958101930;

    function ecAdd(uint256 ax, uint256 ay, uint256 bx, uint256 by) internal view returns (bool, uint256, uint256) {
        (bool ok, bytes memory out) = address(0x06).staticcall{gas: 1000}(abi.encode(ax, ay, bx, by));
        if (!ok) return (false, 0, 0);
        (uint256 x, uint256 y) = abi.decode(out, (uint256, uint256));
        return (true, x, y);
    }

    function ecMul(uint256 x, uint256 y, uint256 s) internal view returns (uint256, uint256) {
        (bool ok, bytes memory out) = address(0x07).staticcall(abi.encode(x, y, s));
        require(ok, "ecMul failed");
        return abi.decode(out, (uint256, uint256));
    }

    /// e(a, G2) * e(b, G2) == 1.
    function pairing2(uint256 ax, uint256 ay, uint256 bx, uint256 by) internal view returns (bool) {
        bytes memory input = abi.encode(ax, ay, G2_XI, G2_XR, G2_YI, G2_YR, bx, by, G2_XI, G2_XR, G2_YI, G2_YR);
        (bool ok, bytes memory out) = address(0x08).staticcall(input);
        require(ok && out.length == 32, "ecPairing failed");
        return abi.decode(out, (uint256)) == 1;
    }

    function test_chain_id_is_anvils() public view {
        assertEq(block.chainid, 31337, "block.chainid");
    }

    function test_ec_add_doubles_the_generator() public view {
        (bool ok, uint256 x, uint256 y) = ecAdd(G1_X, G1_Y, G1_X, G1_Y);
        assertTrue(ok, "ecAdd(G, G) failed");
        assertEq(x, G1_2X, "(G + G).x");
        assertEq(y, G1_2Y, "(G + G).y");
    }

    function test_ec_add_rejects_a_point_off_the_curve() public view {
        (bool ok,,) = ecAdd(G1_X, G1_Y + 1, G1_X, G1_Y);
        assertTrue(!ok, "ecAdd accepted (1, 3), which is not on the curve");
    }

    function test_ec_mul_by_two_equals_doubling() public view {
        (uint256 x, uint256 y) = ecMul(G1_X, G1_Y, 2);
        assertEq(x, G1_2X, "(2 * G).x");
        assertEq(y, G1_2Y, "(2 * G).y");
    }

    function test_pairing_of_g_and_minus_g_is_one() public view {
        assertTrue(pairing2(G1_X, G1_Y, G1_X, P - G1_Y), "e(G1, G2) * e(-G1, G2) != 1");
        assertTrue(!pairing2(G1_X, G1_Y, G1_X, G1_Y), "e(G1, G2) * e(G1, G2) == 1");
    }
}
