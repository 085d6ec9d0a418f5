// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title The verifier of Fabstir inference proofs, as its callers see it
/// @notice The one source of the verifier's interface: the marketplace calls
/// it, the node binds it with alloy's `sol!`
/// (crates/fabstir-node/src/chain/contract.rs) and the JavaScript package's
/// ABI is generated from it (clients/js/scripts/abi.mjs). The generated
/// FabstirVerifier.sol has exactly these external functions and errors
/// (clients/js/test/abi.test.mjs compares them).
interface IFabstirVerifier {
    /// @notice A precompile failed: only when out of gas (inputs are validated first).
    error PrecompileFailed();

    /// @notice Identity of the verifying key the contract checks proofs against.
    function VK_ID() external view returns (bytes32);

    /// @notice Circuit version of that key.
    function CIRCUIT_VERSION() external view returns (uint8);

    /// @notice Number of public inputs of a proof.
    function NUM_INSTANCES() external view returns (uint256);

    /// @notice Length in bytes of a proof.
    function PROOF_LENGTH() external view returns (uint256);

    /// @notice Contract whose code holds the gates' constants.
    function CONSTANTS() external view returns (address);

    /// @notice True if `proof` is valid for the public inputs `instances` under VK_ID;
    /// false for any invalid or malformed proof. Reverts only on malformed ABI.
    function verify(uint256[7] calldata instances, bytes calldata proof) external view returns (bool);

    /// @notice True if every proof is valid for its instances, checked with one pairing.
    function verifyBatch(uint256[7][] calldata instances, bytes[] calldata proofs) external view returns (bool);
}
