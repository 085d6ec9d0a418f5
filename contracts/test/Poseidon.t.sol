// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";
import {Poseidon} from "../src/Poseidon.sol";

/// The library behind external functions: what a deployed Poseidon contract would be
/// (its code size is checked against EIP-170), and a way to observe reverts.
contract PoseidonHasher {
    function hash1(uint256 x) external pure returns (uint256) {
        return Poseidon.hash1(x);
    }

    function hash11(uint256[11] calldata inputs) external pure returns (uint256) {
        return Poseidon.hash11(inputs);
    }
}

/// The client test vectors (docs/test-vectors.json, pinned by fabstir-zk's `vectors` tests and
/// read by the JavaScript client's too) on the EVM: Poseidon with one and eleven inputs, and
/// each statement's commitment, from its field elements and from its result.
contract PoseidonTest is Test {
    /// The test vectors, relative to the Foundry project (foundry.toml's fs_permissions).
    string constant VECTORS = "../docs/test-vectors.json";

    /// The BN254 scalar field modulus.
    uint256 constant Q = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    uint256 constant EIP170_LIMIT = 24576;

    PoseidonHasher hasher;
    string json;

    function setUp() public {
        hasher = new PoseidonHasher();
        json = vm.readFile(VECTORS);
    }

    /// The first commitment input of circuit version 2.
    function chainAndTokens(uint64 chainId, uint64 tokens) internal pure returns (uint256) {
        return uint256(chainId) + (uint256(tokens) << 64);
    }

    /// The commitment inputs of a statement, as the Rust statement encoding lays them out:
    /// 32-byte values as (hi, lo) 128-bit halves, the address as one element.
    function commitmentInputs(
        uint256 first,
        address marketplace,
        bytes32 jobId,
        bytes32 modelHash,
        bytes32 inputHash,
        bytes32 outputHash,
        uint256 hostId
    ) internal pure returns (uint256[11] memory x) {
        x[0] = first;
        x[1] = uint256(uint160(marketplace));
        (x[2], x[3]) = limbs(jobId);
        (x[4], x[5]) = limbs(modelHash);
        (x[6], x[7]) = limbs(inputHash);
        (x[8], x[9]) = limbs(outputHash);
        x[10] = hostId;
    }

    /// A 32-byte value as its big-endian (hi, lo) 128-bit halves.
    function limbs(bytes32 value) internal pure returns (uint256 hi, uint256 lo) {
        hi = uint256(value) >> 128;
        lo = uint256(value) & type(uint128).max;
    }

    /// Revert data of Poseidon.InputNotInField(index, value).
    function notInField(uint256 index, uint256 value) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(Poseidon.InputNotInField.selector, index, value);
    }

    function test_library_fits_eip170() public view {
        assertTrue(address(hasher).code.length <= EIP170_LIMIT, "PoseidonHasher exceeds EIP-170");
    }

    function test_hash1_refuses_inputs_not_in_the_field() public {
        uint256[3] memory bad = [Q, Q + 1, type(uint256).max];
        for (uint256 i = 0; i < bad.length; ++i) {
            (bool ok, bytes memory data) = address(hasher).call(abi.encodeCall(PoseidonHasher.hash1, (bad[i])));
            assertTrue(!ok, "hash1 accepted an input >= Q");
            assertTrue(keccak256(data) == keccak256(notInField(0, bad[i])), "hash1: revert data");
        }
        assertEq(hasher.hash1(Q - 1), Poseidon.hash1(Q - 1), "hash1(Q - 1) through the contract");
    }

    function test_hash11_refuses_inputs_not_in_the_field() public {
        for (uint256 i = 0; i < 11; ++i) {
            uint256[11] memory inputs;
            inputs[i] = i % 2 == 0 ? Q : type(uint256).max;
            (bool ok, bytes memory data) = address(hasher).call(abi.encodeCall(PoseidonHasher.hash11, (inputs)));
            assertTrue(!ok, "hash11 accepted an input >= Q");
            assertTrue(keccak256(data) == keccak256(notInField(i, inputs[i])), "hash11: revert data");
            inputs[i] = Q - 1;
            assertEq(hasher.hash11(inputs), Poseidon.hash11(inputs), "hash11 with Q - 1 through the contract");
        }
    }

    /// `"<array>[<index>]"`, a JSON path.
    function item(string memory array, uint256 index) internal pure returns (string memory) {
        return string.concat(array, "[", toString(index), "]");
    }

    /// The number of elements of the JSON array at `path`.
    function count(string memory path) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, item(path, n))) ++n;
    }

    function test_poseidon_1() public view {
        uint256 n = count(".poseidon_1");
        assertTrue(n > 0, "no poseidon_1 vectors");
        for (uint256 i = 0; i < n; ++i) {
            string memory v = item(".poseidon_1", i);
            uint256 input = vm.parseJsonUint(json, string.concat(v, ".input"));
            assertEq(Poseidon.hash1(input), vm.parseJsonUint(json, string.concat(v, ".output")), v);
        }
    }

    function test_poseidon_11() public view {
        uint256 n = count(".poseidon_11");
        assertTrue(n > 0, "no poseidon_11 vectors");
        for (uint256 i = 0; i < n; ++i) {
            string memory v = item(".poseidon_11", i);
            uint256[11] memory inputs = uint11(string.concat(v, ".inputs"));
            assertEq(Poseidon.hash11(inputs), vm.parseJsonUint(json, string.concat(v, ".output")), v);
        }
    }

    /// Every array of statement vectors (`statements`, `statements_v1`, ...): each
    /// commitment from its eleven field elements, and from the result itself.
    function test_statements() public view {
        string[] memory keys = vm.parseJsonKeys(json, "$");
        uint256 sets;
        for (uint256 k = 0; k < keys.length; ++k) {
            if (!startsWith(keys[k], "statements")) continue;
            string memory set = string.concat(".", keys[k]);
            uint256 n = count(set);
            assertTrue(n > 0, string.concat("no vectors in ", keys[k]));
            for (uint256 i = 0; i < n; ++i) {
                string memory s = item(set, i);
                uint256 commitment = vm.parseJsonUint(json, string.concat(s, ".commitment"));
                assertEq(Poseidon.hash11(uint11(string.concat(s, ".commitment_inputs"))), commitment, s);
                checkResult(s, commitment);
            }
            ++sets;
        }
        assertTrue(sets > 0, "no statement vectors");
    }

    /// Statement vector `s`: the commitment from the result itself (SHA-256 of the texts,
    /// 128-bit limbs, the host id from its secret), checked input by input against the vector.
    /// Results with tokens_used (circuit version 2) hash chain_id + 2^64 * tokens_used first,
    /// the others chain_id.
    function checkResult(string memory s, uint256 commitment) internal view {
        string memory result = string.concat(s, ".result");
        knownFieldsOnly(result);
        uint256 hostId = Poseidon.hash1(uint256(field(s, ".host_secret")));
        assertEq(hostId, uint256(field(s, ".host_id")), string.concat(s, ": host_id"));
        bytes32 modelHash = vm.keyExistsJson(json, string.concat(result, ".model"))
            ? sha256(bytes(text(result, ".model")))
            : field(result, ".model_hash");
        assertEq(uint256(modelHash), uint256(field(s, ".model_hash")), string.concat(s, ": model_hash"));
        bytes32 inputHash = sha256(bytes(text(result, ".prompt")));
        assertEq(uint256(inputHash), uint256(field(s, ".input_hash")), string.concat(s, ": input_hash"));
        bytes32 outputHash = sha256(bytes(text(result, ".response")));
        assertEq(uint256(outputHash), uint256(field(s, ".output_hash")), string.concat(s, ": output_hash"));
        uint256 chainId = vm.parseJsonUint(json, string.concat(result, ".chain_id"));
        uint256 first = vm.keyExistsJson(json, string.concat(result, ".tokens_used"))
            ? chainAndTokens(uint64(chainId), uint64(vm.parseJsonUint(json, string.concat(result, ".tokens_used"))))
            : chainId;
        uint256[11] memory inputs = commitmentInputs(
            first,
            vm.parseJsonAddress(json, string.concat(result, ".marketplace")),
            field(result, ".job_id"),
            modelHash,
            inputHash,
            outputHash,
            hostId
        );
        uint256[11] memory expected = uint11(string.concat(s, ".commitment_inputs"));
        for (uint256 i = 0; i < 11; ++i) {
            assertEq(inputs[i], expected[i], string.concat(s, ": commitment input ", toString(i)));
        }
        assertEq(Poseidon.hash11(inputs), commitment, string.concat(s, ": commitment"));
    }

    /// A result field the commitment does not know how to use fails the test: teach
    /// checkResult (and the statement encoding) about it first.
    function knownFieldsOnly(string memory result) internal view {
        string[] memory keys = vm.parseJsonKeys(json, result);
        string[8] memory known =
            ["chain_id", "job_id", "marketplace", "model_hash", "model", "prompt", "response", "tokens_used"];
        for (uint256 k = 0; k < keys.length; ++k) {
            bool found;
            for (uint256 j = 0; j < known.length; ++j) {
                found = found || keccak256(bytes(keys[k])) == keccak256(bytes(known[j]));
            }
            assertTrue(found, string.concat(result, ": unknown field ", keys[k]));
        }
    }

    /// The 11 words of the JSON array at `path`.
    function uint11(string memory path) internal view returns (uint256[11] memory x) {
        uint256[] memory values = vm.parseJsonUintArray(json, path);
        assertEq(values.length, 11, path);
        for (uint256 i = 0; i < 11; ++i) x[i] = values[i];
    }

    /// The 32-byte value at `object` + `key` (0x and 64 hex digits).
    function field(string memory object, string memory key) internal view returns (bytes32) {
        return vm.parseJsonBytes32(json, string.concat(object, key));
    }

    /// The string at `object` + `key`.
    function text(string memory object, string memory key) internal view returns (string memory) {
        return vm.parseJsonString(json, string.concat(object, key));
    }

    function startsWith(string memory s, string memory prefix) internal pure returns (bool) {
        bytes memory a = bytes(s);
        bytes memory b = bytes(prefix);
        if (a.length < b.length) return false;
        for (uint256 i = 0; i < b.length; ++i) {
            if (a[i] != b[i]) return false;
        }
        return true;
    }
}
