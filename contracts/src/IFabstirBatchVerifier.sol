// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title A verifier of Fabstir batch proofs (placeholder until the generator's interface lands)
interface IFabstirBatchVerifier {
    function VK_ID() external view returns (bytes32);
    function NUM_INSTANCES() external view returns (uint256);
    function verify(uint256[] calldata instances, bytes calldata proof) external view returns (bool);
}
