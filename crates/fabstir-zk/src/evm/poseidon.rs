//! Poseidon in Solidity, and forge tests of it generated from the client test
//! vectors (`docs/test-vectors.json`).
//!
//! [`solidity`] writes the library `Poseidon` (`contracts/src/Poseidon.sol`):
//! `hash1(uint256)` (width 2, the host-id derivation) and
//! `hash11(uint256[11])` (width 12, the commitment), computed from the same
//! parameters as [`crate::poseidon`] (circomlib's, derived by our Grain
//! LFSR). [`forge_tests`] writes `contracts/test/Poseidon.t.sol`, which checks
//! every Poseidon vector and every statement vector on the EVM.
//!
//! Design (correctness first, then size, then gas):
//! - one permutation loop per width, in inline assembly: add the round
//!   constants, S-box (`x^5`), multiply by the dense MDS matrix (each row
//!   written out, the state in memory);
//! - constants of the partial rounds are folded forward as in the circuit's
//!   [`Schedule`]: a partial round adds one constant (to the S-box element),
//!   and the first full round after them carries the rest. This cuts the
//!   constants of width 12 from 816 to 156 words. circomlib's sparse-matrix
//!   form of the partial rounds would save gas but store `2t - 1` words per
//!   partial round (1,380 for width 12), which EIP-170 does not leave room
//!   for;
//! - the constants and the MDS matrix are one `bytes` constant per width,
//!   copied into memory once per call: 32 bytes a word instead of a 33-byte
//!   `PUSH32` for each use;
//! - inputs must be field elements (below the BN254 scalar modulus), else the
//!   call reverts with `InputNotInField(index, value)`.
//!
//! Both files are checked in; tests in this module fail when either differs
//! from what the generators write now. After an intended change, regenerate
//! with `FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon`
//! (the convention of `tests/it/vectors.rs`).

use std::fmt::Write as _;

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::PrimeField;
use serde_json::Value;

use crate::poseidon::schedule::Schedule;
use crate::poseidon::{self as native, PoseidonParams};
use crate::statement::{field_to_be, Address};

/// Path of the generated library, relative to the workspace root.
pub const LIBRARY_PATH: &str = "contracts/src/Poseidon.sol";

/// Path of the generated forge tests, relative to the workspace root.
pub const TESTS_PATH: &str = "contracts/test/Poseidon.t.sol";

/// Path of the test vectors the forge tests are generated from, relative to
/// the workspace root.
pub const VECTORS_PATH: &str = "docs/test-vectors.json";

/// The constants of one width in the order the Solidity loop reads them.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// State width `t`.
    pub width: usize,
    /// Full rounds `R_F` (half before, half after the partial rounds).
    pub full_rounds: usize,
    /// Partial rounds `R_P`.
    pub partial_rounds: usize,
    /// The MDS matrix, row by row.
    pub mds: Vec<Vec<Fr>>,
    /// Round constants as consumed: `t` per full round, one per partial
    /// round (folded forward, see the module documentation).
    pub constants: Vec<Fr>,
}

impl Layout {
    /// The layout of `params`.
    pub fn new(params: &PoseidonParams) -> Self {
        let schedule = Schedule::new(params, 1);
        let half = params.full_rounds / 2;
        let constants = schedule.full_constants[..half]
            .iter()
            .flatten()
            .chain(&schedule.partial_constants)
            .chain(schedule.full_constants[half..].iter().flatten())
            .copied()
            .collect();
        Self {
            width: params.width,
            full_rounds: params.full_rounds,
            partial_rounds: params.partial_rounds,
            mds: schedule.mds,
            constants,
        }
    }

    /// Total number of rounds.
    fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// The words of the `bytes` constant: the round constants (the MDS
    /// matrix is written into the code).
    fn words(&self) -> impl Iterator<Item = &Fr> {
        self.constants.iter()
    }

    /// The permutation exactly as the Solidity loop computes it, on
    /// `[0, inputs...]`; returns element 0. Tests check it against the
    /// reference [`PoseidonParams::hash`].
    #[cfg(test)]
    pub fn hash(&self, inputs: &[Fr]) -> Fr {
        let t = self.width;
        assert_eq!(inputs.len() + 1, t);
        use halo2_axiom::halo2curves::ff::Field;
        let mut state: Vec<Fr> = std::iter::once(Fr::ZERO)
            .chain(inputs.iter().copied())
            .collect();
        let mut k = self.constants.iter();
        let half = self.full_rounds / 2;
        for r in 0..self.rounds() {
            let partial = r >= half && r < half + self.partial_rounds;
            let sboxes = if partial { 1 } else { t };
            for s in &mut state[..sboxes] {
                *s = native::pow5(*s + k.next().expect("enough constants"));
            }
            state = native::mat_vec(&self.mds, &state);
        }
        assert!(k.next().is_none(), "every constant is used");
        state[0]
    }
}

/// `0x` and 64 hex digits.
fn hex_word(x: &Fr) -> String {
    format!("0x{}", hex::encode(field_to_be(x)))
}

/// The BN254 scalar modulus as `0x` and 64 hex digits.
fn modulus_hex() -> String {
    let digits = Fr::MODULUS.trim_start_matches("0x");
    format!("0x{digits:0>64}")
}

/// Name of a width's `bytes` constant.
fn constants_name(width: usize) -> String {
    format!("CONSTANTS_T{width}")
}

/// The `bytes` constant of one width, one 32-byte word a line.
fn constants_declaration(layout: &Layout) -> String {
    let t = layout.width;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "    /// Width {t}: the round constants as the loop reads them ({t} per full round, one per\n    \
         /// partial round)."
    );
    let _ = write!(out, "    bytes internal constant {} =", constants_name(t));
    for word in layout.words() {
        let _ = write!(out, "\n        hex\"{}\"", &hex_word(word)[2..]);
    }
    out.push_str(";\n");
    out
}

/// The inline-assembly permutation of one width: `state` points at `t`
/// words in memory holding `[0, inputs...]`, `consts` at the `bytes`
/// constant (the round constants) in memory; leaves element 0 in `h`.
///
/// The loop runs over rounds; a round's body is written out: its S-boxes,
/// then the MDS product with the matrix entries as literals. A row sums up
/// to three products with `add` before an `addmod` (each product is below
/// `Q`, and `4 Q < 2^256`).
fn permutation_assembly(layout: &Layout) -> String {
    let t = layout.width;
    let t32 = t * 32;
    let half = layout.full_rounds / 2;
    let at = |base: &str, off: usize| {
        if off == 0 {
            base.to_string()
        } else {
            format!("add({base}, {off:#x})")
        }
    };
    let sbox = |out: &mut String, indent: &str, off: usize| {
        let _ = writeln!(
            out,
            "{indent}let v := addmod(mload({}), mload({}), q)",
            at("s", off),
            at("k", off)
        );
        let _ = writeln!(out, "{indent}let v2 := mulmod(v, v, q)");
        let _ = writeln!(
            out,
            "{indent}mstore({}, mulmod(mulmod(v2, v2, q), v, q))",
            at("s", off)
        );
    };
    let mut out = String::new();
    out.push_str("        assembly (\"memory-safe\") {\n");
    out.push_str(
        "            // s: the state; n: the next state (scratch at the free memory pointer,\n            \
         // not allocated); k: the next round constant.\n",
    );
    out.push_str("            let q := Q\n            let s := state\n");
    out.push_str("            let n := mload(0x40)\n            let k := add(consts, 0x20)\n");
    let _ = writeln!(
        out,
        "            for {{ let r := 0 }} lt(r, {}) {{ r := add(r, 1) }} {{",
        layout.rounds()
    );
    let _ = writeln!(
        out,
        "                switch and(iszero(lt(r, {half})), lt(r, {}))",
        half + layout.partial_rounds
    );
    out.push_str("                case 0 {\n                    // Full round: every element.\n");
    for i in 0..t {
        out.push_str("                    {\n");
        sbox(&mut out, "                        ", i * 32);
        out.push_str("                    }\n");
    }
    let _ = writeln!(out, "                    k := add(k, {t32:#x})");
    out.push_str("                }\n                default {\n");
    out.push_str("                    // Partial round: element 0 only, one (folded) constant.\n");
    sbox(&mut out, "                    ", 0);
    out.push_str("                    k := add(k, 0x20)\n                }\n");
    out.push_str("                // n = MDS * s.\n");
    for (i, row) in layout.mds.iter().enumerate() {
        out.push_str("                {\n");
        for (j, m) in row.iter().enumerate() {
            let term = format!("mulmod({}, mload({}), q)", hex_word(m), at("s", j * 32));
            let line = if j == 0 {
                format!("let a := {term}")
            } else if j % 4 == 3 || j + 1 == t {
                format!("a := addmod(a, {term}, q)")
            } else {
                format!("a := add(a, {term})")
            };
            let _ = writeln!(out, "                    {line}");
        }
        let _ = writeln!(out, "                    mstore({}, a)", at("n", i * 32));
        out.push_str("                }\n");
    }
    out.push_str(
        "                let swap := s\n                s := n\n                n := swap\n",
    );
    out.push_str("            }\n            h := mload(s)\n        }\n");
    out
}

/// Solidity source of the library `Poseidon` (`contracts/src/Poseidon.sol`),
/// from [`native::host_id_params`] and [`native::commitment_params`].
pub fn solidity() -> String {
    let l2 = Layout::new(native::host_id_params());
    let l12 = Layout::new(native::commitment_params());
    let mut out = String::new();
    out.push_str(
        "// SPDX-License-Identifier: MIT\n\
         // Generated by fabstir_zk::evm::poseidon::solidity() from the Rust Poseidon parameters; do not\n\
         // edit. Regenerate with FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon\n\
         pragma solidity ^0.8.28;\n\n",
    );
    let _ = writeln!(
        out,
        "/// @title Poseidon over the BN254 scalar field with circomlib's parameters\n\
         /// @notice x^5 S-box, {} full rounds, {} partial rounds for one input (width 2) and {} for\n\
         /// eleven (width 12); the state is [0, inputs...] and the hash is element 0 of the\n\
         /// permuted state, as circomlib's Poseidon(n). hash1 derives a host id from its secret,\n\
         /// hash11 a fabstir-zk statement's commitment from its field elements.\n\
         /// @dev Partial rounds add one constant each: the constants of the other elements are\n\
         /// folded into the next full round (an equivalent form of the same permutation).",
        l2.full_rounds, l2.partial_rounds, l12.partial_rounds
    );
    out.push_str("library Poseidon {\n");
    let _ = writeln!(
        out,
        "    /// The BN254 scalar field modulus.\n    uint256 internal constant Q = {};\n",
        modulus_hex()
    );
    out.push_str(
        "    /// Input `index` is `value`, which is not below the field modulus.\n    \
         error InputNotInField(uint256 index, uint256 value);\n\n",
    );

    out.push_str(
        "    /// @notice Poseidon of one field element (width 2): a host id from its secret.\n    \
         /// @dev Reverts with InputNotInField(0, x) unless x < Q.\n    \
         function hash1(uint256 x) internal pure returns (uint256 h) {\n        \
         if (x >= Q) revert InputNotInField(0, x);\n",
    );
    let _ = writeln!(
        out,
        "        bytes memory consts = {};\n        \
         uint256[2] memory state = [uint256(0), x];",
        constants_name(2)
    );
    out.push_str(&permutation_assembly(&l2));
    out.push_str("    }\n\n");

    out.push_str(
        "    /// @notice Poseidon of eleven field elements (width 12): a statement's commitment.\n    \
         /// @dev Reverts with InputNotInField(i, inputs[i]) for the first input not below Q.\n    \
         function hash11(uint256[11] memory inputs) internal pure returns (uint256 h) {\n        \
         bytes memory consts = CONSTANTS_T12;\n        \
         uint256[12] memory state;\n        \
         for (uint256 i = 0; i < 11; ++i) {\n            \
         uint256 x = inputs[i];\n            \
         if (x >= Q) revert InputNotInField(i, x);\n            \
         state[i + 1] = x;\n        \
         }\n",
    );
    out.push_str(&permutation_assembly(&l12));
    out.push_str("    }\n\n");
    out.push_str(&constants_declaration(&l2));
    out.push('\n');
    out.push_str(&constants_declaration(&l12));
    out.push_str("}\n");
    out
}

/// A `0x` + 64 hex digit field element from the vectors, validated.
fn field_word(value: &Value, what: &str) -> Result<String, String> {
    let s = value
        .as_str()
        .ok_or_else(|| format!("{what}: expected a string"))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{what}: {s:?} lacks 0x"))?;
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{what}: {s:?} is not 0x and 64 hex digits"));
    }
    Ok(s.to_ascii_lowercase())
}

/// `object[key]`, required.
fn field<'a>(object: &'a Value, key: &str, what: &str) -> Result<&'a Value, String> {
    object
        .get(key)
        .ok_or_else(|| format!("{what}: missing {key:?}"))
}

/// `object[key]` as an array, required.
fn array<'a>(object: &'a Value, key: &str, what: &str) -> Result<&'a Vec<Value>, String> {
    field(object, key, what)?
        .as_array()
        .ok_or_else(|| format!("{what}.{key}: expected an array"))
}

/// `object[key]` as an unsigned integer below 2^64, required.
fn u64_field(object: &Value, key: &str, what: &str) -> Result<u64, String> {
    field(object, key, what)?
        .as_u64()
        .ok_or_else(|| format!("{what}.{key}: expected an integer below 2^64"))
}

/// A Solidity `uint256[11]` literal.
fn array11(words: &[String]) -> String {
    let mut out = String::from("[\n");
    for (i, w) in words.iter().enumerate() {
        let w = if i == 0 {
            format!("uint256({w})")
        } else {
            w.clone()
        };
        let sep = if i + 1 < words.len() { "," } else { "" };
        let _ = writeln!(out, "            {w}{sep}");
    }
    out.push_str("        ]");
    out
}

/// A Solidity hex string literal of `bytes` (empty strings too).
fn hex_bytes(bytes: &[u8]) -> String {
    format!("hex\"{}\"", hex::encode(bytes))
}

/// The forge tests of one statement vector: the commitment from its field
/// elements, and from the result itself (hashes, limbs, host id) as the
/// Rust statement encoding derives it.
fn statement_tests(out: &mut String, set: &str, index: usize, s: &Value) -> Result<(), String> {
    let what = format!("{set}[{index}]");
    let commitment = field_word(field(s, "commitment", &what)?, &what)?;
    let inputs = array(s, "commitment_inputs", &what)?
        .iter()
        .map(|v| field_word(v, &format!("{what}.commitment_inputs")))
        .collect::<Result<Vec<_>, _>>()?;
    if inputs.len() != 11 {
        return Err(format!(
            "{what}: {} commitment inputs, not 11",
            inputs.len()
        ));
    }
    let _ = writeln!(
        out,
        "    /// {what}: the commitment from its eleven field elements.\n    \
         function test_{set}_{index}_commitment_from_inputs() public pure {{\n        \
         uint256[11] memory inputs = {};\n        \
         assertEq(Poseidon.hash11(inputs), {commitment}, \"{what}: commitment\");\n    }}\n",
        array11(&inputs)
    );

    let result = field(s, "result", &what)?;
    let known = [
        "chain_id",
        "job_id",
        "marketplace",
        "model_hash",
        "model",
        "prompt",
        "response",
        "tokens_used",
    ];
    let object = result
        .as_object()
        .ok_or_else(|| format!("{what}.result: expected an object"))?;
    if let Some(key) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "{what}.result: unknown field {key:?}; teach fabstir_zk::evm::poseidon::forge_tests \
             how the commitment uses it"
        ));
    }
    let chain_id = u64_field(result, "chain_id", &what)?;
    let first = match result.get("tokens_used") {
        Some(_) => {
            let tokens = u64_field(result, "tokens_used", &what)?;
            format!("chainAndTokens({chain_id}, {tokens})")
        }
        None => format!("{chain_id}"),
    };
    let job_id = field_word(field(result, "job_id", &what)?, &format!("{what}.job_id"))?;
    let marketplace = field(result, "marketplace", &what)?
        .as_str()
        .ok_or_else(|| format!("{what}.marketplace: expected a string"))?;
    let marketplace = Address::parse(marketplace)
        .map_err(|e| format!("{what}.marketplace: {e}"))?
        .to_checksummed();
    let text = |key: &str| -> Result<String, String> {
        let v = field(result, key, &what)?
            .as_str()
            .ok_or_else(|| format!("{what}.{key}: expected a string"))?;
        Ok(hex_bytes(v.as_bytes()))
    };
    let model = match (result.get("model_hash"), result.get("model")) {
        (Some(hash), None) => {
            format!(
                "bytes32({})",
                field_word(hash, &format!("{what}.model_hash"))?
            )
        }
        (None, Some(_)) => format!("sha256({})", text("model")?),
        _ => {
            return Err(format!(
                "{what}.result: exactly one of model_hash and model"
            ))
        }
    };
    let expected = |key: &str| -> Result<String, String> {
        field_word(field(s, key, &what)?, &format!("{what}.{key}"))
    };
    let _ = writeln!(
        out,
        "    /// {what}: the commitment from the result itself (SHA-256 of the texts, 128-bit limbs,\n    \
         /// the host id from its secret), checked input by input against the vector.\n    \
         function test_{set}_{index}_commitment_from_result() public pure {{\n        \
         uint256 hostId = Poseidon.hash1({});\n        \
         assertEq(hostId, {}, \"{what}: host_id\");\n        \
         bytes32 modelHash = {model};\n        \
         assertEq(uint256(modelHash), {}, \"{what}: model_hash\");\n        \
         bytes32 inputHash = sha256({});\n        \
         assertEq(uint256(inputHash), {}, \"{what}: input_hash\");\n        \
         bytes32 outputHash = sha256({});\n        \
         assertEq(uint256(outputHash), {}, \"{what}: output_hash\");\n        \
         uint256[11] memory inputs = commitmentInputs(\n            \
         {first}, {marketplace}, bytes32({job_id}), modelHash, inputHash, outputHash, hostId\n        \
         );\n        \
         uint256[11] memory expected = {};\n        \
         for (uint256 i = 0; i < 11; ++i) {{\n            \
         assertEq(inputs[i], expected[i], string.concat(\"{what}: commitment input \", toString(i)));\n        \
         }}\n        \
         assertEq(Poseidon.hash11(inputs), {commitment}, \"{what}: commitment\");\n    }}\n",
        expected("host_secret")?,
        expected("host_id")?,
        expected("model_hash")?,
        text("prompt")?,
        expected("input_hash")?,
        text("response")?,
        expected("output_hash")?,
        array11(&inputs),
    );
    Ok(())
}

/// Solidity source of the forge tests `contracts/test/Poseidon.t.sol`, from
/// the test vectors (the text of `docs/test-vectors.json`): every
/// `poseidon_1` and `poseidon_11` vector, and for every statement vector (in
/// every array whose name starts with `statements`) the commitment from its
/// field elements and from its result. Statements whose result has
/// `tokens_used` (circuit version 2) hash `chain_id + 2^64 * tokens_used`
/// first, the others `chain_id`. Fixed tests add the field-modulus checks
/// and the code size. Errors name the vector that does not have the
/// expected shape.
pub fn forge_tests(vectors: &str) -> Result<String, String> {
    let doc: Value = serde_json::from_str(vectors).map_err(|e| format!("vectors: {e}"))?;
    let mut out = String::new();
    out.push_str(
        "// SPDX-License-Identifier: MIT\n\
         // Generated by fabstir_zk::evm::poseidon::forge_tests() from docs/test-vectors.json; do not\n\
         // edit. Regenerate with FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon\n\
         pragma solidity ^0.8.28;\n\n\
         import {Test} from \"./utils/Test.sol\";\n\
         import {Poseidon} from \"../src/Poseidon.sol\";\n\n\
         /// The library behind external functions: what a deployed Poseidon contract would be\n\
         /// (its code size is checked against EIP-170), and a way to observe reverts.\n\
         contract PoseidonHasher {\n    \
         function hash1(uint256 x) external pure returns (uint256) {\n        \
         return Poseidon.hash1(x);\n    }\n\n    \
         function hash11(uint256[11] calldata inputs) external pure returns (uint256) {\n        \
         return Poseidon.hash11(inputs);\n    }\n}\n\n\
         /// The client test vectors on the EVM: Poseidon with one and eleven inputs, and each\n\
         /// statement's commitment, from its field elements and from its result.\n\
         contract PoseidonTest is Test {\n",
    );
    let _ = writeln!(
        out,
        "    /// The BN254 scalar field modulus.\n    uint256 constant Q = {};",
        modulus_hex()
    );
    out.push_str(
        "    uint256 constant EIP170_LIMIT = 24576;\n\n    \
         PoseidonHasher hasher;\n\n    \
         function setUp() public {\n        \
         hasher = new PoseidonHasher();\n    }\n\n    \
         /// The first commitment input of circuit version 2.\n    \
         function chainAndTokens(uint64 chainId, uint64 tokens) internal pure returns (uint256) {\n        \
         return uint256(chainId) + (uint256(tokens) << 64);\n    }\n\n    \
         /// The commitment inputs of a statement, as the Rust statement encoding lays them out:\n    \
         /// 32-byte values as (hi, lo) 128-bit halves, the address as one element.\n    \
         function commitmentInputs(\n        \
         uint256 first,\n        \
         address marketplace,\n        \
         bytes32 jobId,\n        \
         bytes32 modelHash,\n        \
         bytes32 inputHash,\n        \
         bytes32 outputHash,\n        \
         uint256 hostId\n    \
         ) internal pure returns (uint256[11] memory x) {\n        \
         x[0] = first;\n        \
         x[1] = uint256(uint160(marketplace));\n        \
         (x[2], x[3]) = limbs(jobId);\n        \
         (x[4], x[5]) = limbs(modelHash);\n        \
         (x[6], x[7]) = limbs(inputHash);\n        \
         (x[8], x[9]) = limbs(outputHash);\n        \
         x[10] = hostId;\n    }\n\n    \
         /// A 32-byte value as its big-endian (hi, lo) 128-bit halves.\n    \
         function limbs(bytes32 value) internal pure returns (uint256 hi, uint256 lo) {\n        \
         hi = uint256(value) >> 128;\n        \
         lo = uint256(value) & type(uint128).max;\n    }\n\n\
         \x20   /// Revert data of Poseidon.InputNotInField(index, value).\n    \
         function notInField(uint256 index, uint256 value) internal pure returns (bytes memory) {\n        \
         return abi.encodeWithSelector(Poseidon.InputNotInField.selector, index, value);\n    }\n\n    \
         function test_library_fits_eip170() public view {\n        \
         assertTrue(address(hasher).code.length <= EIP170_LIMIT, \"PoseidonHasher exceeds EIP-170\");\n    }\n\n    \
         function test_hash1_refuses_inputs_not_in_the_field() public {\n        \
         uint256[3] memory bad = [Q, Q + 1, type(uint256).max];\n        \
         for (uint256 i = 0; i < bad.length; ++i) {\n            \
         (bool ok, bytes memory data) = address(hasher).call(abi.encodeCall(PoseidonHasher.hash1, (bad[i])));\n            \
         assertTrue(!ok, \"hash1 accepted an input >= Q\");\n            \
         assertTrue(keccak256(data) == keccak256(notInField(0, bad[i])), \"hash1: revert data\");\n        \
         }\n        \
         assertEq(hasher.hash1(Q - 1), Poseidon.hash1(Q - 1), \"hash1(Q - 1) through the contract\");\n    }\n\n    \
         function test_hash11_refuses_inputs_not_in_the_field() public {\n        \
         for (uint256 i = 0; i < 11; ++i) {\n            \
         uint256[11] memory inputs;\n            \
         inputs[i] = i % 2 == 0 ? Q : type(uint256).max;\n            \
         (bool ok, bytes memory data) = address(hasher).call(abi.encodeCall(PoseidonHasher.hash11, (inputs)));\n            \
         assertTrue(!ok, \"hash11 accepted an input >= Q\");\n            \
         assertTrue(keccak256(data) == keccak256(notInField(i, inputs[i])), \"hash11: revert data\");\n            \
         inputs[i] = Q - 1;\n            \
         assertEq(hasher.hash11(inputs), Poseidon.hash11(inputs), \"hash11 with Q - 1 through the contract\");\n        \
         }\n    }\n\n",
    );

    for (index, v) in array(&doc, "poseidon_1", "vectors")?.iter().enumerate() {
        let what = format!("poseidon_1[{index}]");
        let input = field_word(field(v, "input", &what)?, &what)?;
        let output = field_word(field(v, "output", &what)?, &what)?;
        let _ = writeln!(
            out,
            "    function test_poseidon_1_{index}() public pure {{\n        \
             assertEq(Poseidon.hash1({input}), {output}, \"{what}\");\n    }}\n"
        );
    }
    for (index, v) in array(&doc, "poseidon_11", "vectors")?.iter().enumerate() {
        let what = format!("poseidon_11[{index}]");
        let inputs = array(v, "inputs", &what)?
            .iter()
            .map(|x| field_word(x, &what))
            .collect::<Result<Vec<_>, _>>()?;
        if inputs.len() != 11 {
            return Err(format!("{what}: {} inputs, not 11", inputs.len()));
        }
        let output = field_word(field(v, "output", &what)?, &what)?;
        let _ = writeln!(
            out,
            "    function test_poseidon_11_{index}() public pure {{\n        \
             uint256[11] memory inputs = {};\n        \
             assertEq(Poseidon.hash11(inputs), {output}, \"{what}\");\n    }}\n",
            array11(&inputs)
        );
    }
    let object = doc
        .as_object()
        .ok_or_else(|| "vectors: expected an object".to_string())?;
    let mut sets = 0;
    for (name, value) in object.iter().filter(|(k, _)| k.starts_with("statements")) {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("vectors: {name:?} is not usable in a test name"));
        }
        let statements = value
            .as_array()
            .ok_or_else(|| format!("{name}: expected an array"))?;
        for (index, s) in statements.iter().enumerate() {
            statement_tests(&mut out, name, index, s)?;
        }
        sets += 1;
    }
    if sets == 0 {
        return Err("vectors: no statement vectors".into());
    }
    // Drop the blank line after the last test.
    out.truncate(out.trim_end().len());
    out.push_str("\n}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use halo2_axiom::halo2curves::ff::Field;
    use rand::SeedableRng;

    use super::*;

    /// The workspace root.
    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Compares a generated file with the checked-in one, or writes it when
    /// `FABSTIR_REGENERATE_VECTORS` is set.
    fn pinned(relative: &str, actual: &str) {
        let path = root().join(relative);
        if std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some() {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{relative}: {e}: regenerate with FABSTIR_REGENERATE_VECTORS=1 cargo test -p \
                 fabstir-zk --lib evm::poseidon"
            )
        });
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            panic!(
                "{relative} differs from its generator (first at line {}): regenerate with \
                 FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-zk --lib evm::poseidon",
                line + 1
            );
        }
    }

    #[test]
    fn folded_layout_computes_the_reference_permutation() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for params in [native::host_id_params(), native::commitment_params()] {
            let layout = Layout::new(params);
            let t = params.width;
            assert_eq!(
                layout.constants.len(),
                params.full_rounds * t + params.partial_rounds
            );
            for case in 0..8 {
                let inputs: Vec<Fr> = match case {
                    0 => vec![Fr::ZERO; t - 1],
                    1 => vec![-Fr::ONE; t - 1],
                    _ => (0..t - 1).map(|_| Fr::random(&mut rng)).collect(),
                };
                assert_eq!(layout.hash(&inputs), params.hash(&inputs), "width {t}");
            }
        }
    }

    #[test]
    fn library_holds_every_constant_once() {
        let source = solidity();
        for params in [native::host_id_params(), native::commitment_params()] {
            let layout = Layout::new(params);
            let words = layout.words().count();
            assert_eq!(words, layout.constants.len());
            for m in layout.mds.iter().flatten() {
                assert!(source.contains(&format!("mulmod({}, ", hex_word(m))));
            }
        }
        assert_eq!(source.matches("hex\"").count(), (16 + 56) + (96 + 60));
        assert!(source.contains(&modulus_hex()));
    }

    #[test]
    fn library_matches_the_checked_in_file() {
        pinned(LIBRARY_PATH, &solidity());
    }

    #[test]
    fn forge_tests_match_the_checked_in_file() {
        let vectors = std::fs::read_to_string(root().join(VECTORS_PATH)).unwrap();
        pinned(TESTS_PATH, &forge_tests(&vectors).unwrap());
    }

    #[test]
    fn forge_tests_refuse_vectors_of_unknown_shape() {
        let vectors = std::fs::read_to_string(root().join(VECTORS_PATH)).unwrap();
        let mut doc: Value = serde_json::from_str(&vectors).unwrap();
        doc["statements"][0]["result"]["temperature"] = 1.into();
        let err = forge_tests(&doc.to_string()).unwrap_err();
        assert!(err.contains("statements[0].result: unknown field \"temperature\""));

        let mut doc: Value = serde_json::from_str(&vectors).unwrap();
        doc["poseidon_1"][1]["output"] = "0x12".into();
        let err = forge_tests(&doc.to_string()).unwrap_err();
        assert!(err.starts_with("poseidon_1[1]"), "{err}");
    }
}
