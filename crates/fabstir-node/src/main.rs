//! `fabstir-node`: the host node's command-line interface.
//!
//! Every command writes exactly one JSON object to standard output (human
//! notes go to standard error), so scripts can consume the results.

mod cli;

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
