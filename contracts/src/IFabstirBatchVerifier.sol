// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title A verifier of Fabstir proofs with many public inputs, as its callers see it
/// @notice The interface of the verifiers `fabstir-node evm verifier` generates for keys
/// with more than 16 public inputs (batch circuits): the same functions as
/// IFabstirVerifier, with the public inputs as a dynamic array (`uint256[]`), whose
/// length must be NUM_INSTANCES. The generated contract declares `is IFabstirBatchVerifier`.
interface IFabstirBatchVerifier {
    /// @notice A precompile failed: only when out of gas (inputs are validated first).
    error PrecompileFailed();

    /// @notice Identity of the verifying key the contract checks proofs against.
    function VK_ID() external view returns (bytes32);

    /// @notice Circuit version of that key.
    function CIRCUIT_VERSION() external view returns (uint8);

    /// @notice Number of public inputs of a proof: the length `instances` must have.
    function NUM_INSTANCES() external view returns (uint256);

    /// @notice Length in bytes of a proof.
    function PROOF_LENGTH() external view returns (uint256);

    /// @notice Contract whose code holds the gates' constants.
    function CONSTANTS() external view returns (address);

    /// @notice True if `proof` is valid for the public inputs `instances` under VK_ID;
    /// false for any invalid or malformed proof, and when `instances` does not have
    /// NUM_INSTANCES elements. Reverts only on malformed ABI.
    function verify(uint256[] calldata instances, bytes calldata proof) external view returns (bool);

    /// @notice True if every proof is valid for its instances (each NUM_INSTANCES long),
    /// checked with one pairing; false for an empty batch or mismatched lengths.
    function verifyBatch(uint256[][] calldata instances, bytes[] calldata proofs) external view returns (bool);
}
