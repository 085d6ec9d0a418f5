//! The `fabstir-node` binary: parses the command line and runs the command
//! (see the library's [`fabstir_node::cli`]).
//!
//! Every command writes JSON to standard output (human notes and logs go to
//! standard error), so scripts can consume the results.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = fabstir_node::cli::Args::parse();
    match fabstir_node::cli::run(args) {
        Ok(code) => code,
        Err(failure) => {
            let json = serde_json::json!({ "error": failure.message, "code": failure.code });
            println!("{json}");
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
