//! The EVM test harness (`tests/common/evm.rs`) works: a contract written here
//! compiles with `contracts/tools/compile.js`, deploys to a local anvil, answers
//! calls, reverts with its reason, and takes transactions with plausible gas.
//!
//! Needs Node.js and `npm ci --prefix contracts` (the README's test command).

use crate::common;

use alloy_primitives::U256;
use alloy_sol_types::{sol, SolCall, SolError, SolValue};
use common::evm::{compile, try_compile, Address, Anvil, CallError};
use common::read_repo_file;

const STORE: &str = r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

contract Store {
    uint256 public value;
    event Set(uint256 value);

    constructor(uint256 initial) {
        value = initial;
    }

    function set(uint256 v) external {
        require(v != 0, "zero");
        value = v;
        emit Set(v);
    }
}
"#;

sol! {
    function value() external view returns (uint256);
    function set(uint256 v) external;
    error Error(string reason);
}

fn write_source(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the Solidity source");
    path
}

fn stored(anvil: &Anvil, store: &Address) -> U256 {
    let data = anvil
        .call(store, &valueCall {}.abi_encode())
        .unwrap_or_else(|e| panic!("value() failed: {e:?}"));
    valueCall::abi_decode_returns(&data).expect("value() returns a uint256")
}

#[test]
fn a_contract_compiles_deploys_answers_calls_and_takes_transactions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let compiled = compile(&write_source(&dir, "Store.sol", STORE), "Store");
    assert!(!compiled.deployed.is_empty(), "no runtime code");
    assert!(
        compiled.bytecode.len() > compiled.deployed.len(),
        "the creation code contains the runtime code"
    );
    let functions: Vec<&str> = compiled
        .abi
        .as_array()
        .expect("the ABI is a list")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert!(
        functions.contains(&"set") && functions.contains(&"value"),
        "ABI: {functions:?}"
    );

    let anvil = Anvil::start();
    assert_eq!(anvil.chain_id(), 31337);

    let mut creation = compiled.bytecode.clone();
    creation.extend(U256::from(7).abi_encode());
    let deployment = anvil.deploy_receipt(&creation);
    let store = deployment.contract_address.expect("contract address");
    // 21000 + 32000 for a creation, plus calldata, code deposit and one SSTORE.
    assert!(
        (60_000..400_000).contains(&deployment.gas_used),
        "deployment gas {}",
        deployment.gas_used
    );
    assert_eq!(anvil.code_size(&store), compiled.deployed.len());
    assert_eq!(
        anvil.code(&store),
        compiled.deployed,
        "runtime code on chain"
    );
    assert_eq!(stored(&anvil, &store), U256::from(7));

    let set_42 = setCall { v: U256::from(42) }.abi_encode();
    let estimate = anvil
        .estimate_gas(&store, &set_42)
        .expect("estimate set(42)");
    let receipt = anvil.send(&store, &set_42, None);
    assert!(receipt.status(), "set(42) reverted: {receipt:?}");
    // 21000 + calldata + rewriting a non-zero cold slot (5000) + a LOG1.
    assert!(
        (26_000..60_000).contains(&receipt.gas_used),
        "set(42) used {} gas",
        receipt.gas_used
    );
    assert!(
        estimate >= receipt.gas_used,
        "estimate {estimate} < used {}",
        receipt.gas_used
    );
    assert_eq!(stored(&anvil, &store), U256::from(42));
    assert_eq!(receipt.logs().len(), 1, "one Set event");

    // A revert: eth_call returns its reason, a mined transaction has status 0.
    let set_0 = setCall { v: U256::ZERO }.abi_encode();
    match anvil.call(&store, &set_0) {
        Err(CallError::Reverted(data)) => {
            let reason = Error::abi_decode(&data).expect("an Error(string) revert");
            assert_eq!(reason.reason, "zero");
        }
        other => panic!("set(0) should revert, got {other:?}"),
    }
    assert!(matches!(
        anvil.estimate_gas(&store, &set_0),
        Err(CallError::Reverted(_))
    ));
    let failed = anvil.send(&store, &set_0, Some(100_000));
    assert!(!failed.status(), "set(0) was mined as a success");
    assert_eq!(
        stored(&anvil, &store),
        U256::from(42),
        "a reverted transaction changed state"
    );
}

#[test]
fn compile_errors_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = write_source(&dir, "Broken.sol", "contract Broken { function f( }");
    let error = try_compile(&broken, "Broken").expect_err("a syntax error compiled");
    assert!(error.contains("ParserError"), "{error}");
    let store = write_source(&dir, "Store.sol", STORE);
    let error = try_compile(&store, "Missing").expect_err("a missing contract compiled");
    assert!(error.contains("no contract Missing"), "{error}");
}

/// compile.js and foundry.toml compile with the same optimizer and EVM version.
#[test]
fn compile_js_uses_the_foundry_settings() {
    let foundry: toml::Table = read_repo_file("contracts/foundry.toml")
        .parse()
        .expect("foundry.toml parses");
    let profile = &foundry["profile"]["default"];
    let runs = profile["optimizer_runs"]
        .as_integer()
        .expect("optimizer_runs");
    let evm = profile["evm_version"].as_str().expect("evm_version");
    assert_eq!(profile["optimizer"].as_bool(), Some(true));
    let script = read_repo_file("contracts/tools/compile.js");
    let settings = format!(
        "const SETTINGS = {{ optimizer: {{ enabled: true, runs: {runs} }}, evmVersion: '{evm}' }};"
    );
    assert!(
        script.contains(&settings),
        "compile.js should contain: {settings}"
    );
}
