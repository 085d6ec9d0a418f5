//! `fabstir-node`: the host node. `serve` runs the HTTP service (results ->
//! proofs -> durable stores -> checkpoints -> settlement); the other commands
//! manage keys and prove, verify and benchmark from the command line.
//!
//! Every command writes JSON to standard output (human notes and logs go to
//! standard error), so scripts can consume the results.
//!
//! A result's path through the node, one module per step:
//! `http` (POST /v1/results) -> `store` (results table, queued) ->
//! `prover` (pool, generator, cache; proofs table) -> `checkpoint`
//! (outbox, `chain` payload, ledger) -> `settlement` (validator, settlements
//! table). `keys` holds the key sets, `config` the configuration, `metrics`
//! the Prometheus metrics.

mod backup;
pub mod chain;
mod checkpoint;
mod cli;
mod config;
mod http;
mod keys;
mod metrics;
mod prover;
mod settlement;
mod store;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(failure) => {
            let json = serde_json::json!({ "error": failure.message, "code": failure.code });
            println!("{json}");
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
