//! The integration tests of `fabstir-node`, one module per area, linked into
//! one test binary (`cargo test -p fabstir-node --test it`; a module alone:
//! `cargo test -p fabstir-node --test it -- <module>::`).

mod batch_check;
mod chain_anvil;
mod cli;
mod common;
mod docs;
mod evm_bench;
mod evm_toolchain;
mod evm_verifier;
mod health;
mod js_client;
mod key_lifecycle;
mod logging;
mod marketplace;
mod monitoring;
mod openapi;
mod readme_chain;
mod readme_onchain;
mod service_crash;
mod service_disputes;
mod service_lifecycle;
mod service_load;
mod service_recovery;
mod service_trust;
mod store_migration;
mod structure;
mod token_invariant;
