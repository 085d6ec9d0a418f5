//! The `fabstir-node` binary: parses the command line and runs the command
//! (see the library's [`fabstir_node::cli`]).
//!
//! Every command writes JSON to standard output (human notes and logs go to
//! standard error), so scripts can consume the results. Before anything
//! else it caps the C allocator's arenas ([`fabstir_node::malloc`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread starts: glibc's per-thread arenas let a long-running
    // node's memory creep up (MALLOC_ARENA_MAX overrides the cap).
    fabstir_node::malloc::cap_arenas();
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
