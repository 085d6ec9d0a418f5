//! The `fabstir-node` binary: parses the command line and runs the command
//! (see the library's [`fabstir_node::cli`]).
//!
//! Every command writes one JSON object to standard output (human notes and
//! logs go to standard error), so scripts can consume the results; so does
//! a command line that cannot be parsed (`{"error": …, "code": "usage"}`,
//! exit code 2). `--help` and `--version` print text. Before anything else
//! it caps the C allocator's arenas ([`fabstir_node::malloc`]).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use fabstir_node::cli::{self, Failure};

fn main() -> ExitCode {
    // Before any thread starts: glibc's per-thread arenas let a long-running
    // node's memory creep up (MALLOC_ARENA_MAX overrides the cap).
    fabstir_node::malloc::cap_arenas();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = match cli::parse(&argv) {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version: human text on standard output, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let failure = cli::usage_failure(&e, &argv);
            print_failure(&failure);
            if failure.code == "usage" {
                // clap's own text (with the usage) for the person at the terminal.
                let _ = e.print();
            } else {
                eprintln!("error: {}", failure.message);
            }
            return ExitCode::from(failure.exit_code);
        }
    };
    match cli::run(args) {
        Ok(code) => code,
        Err(failure) => {
            print_failure(&failure);
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// The failure's JSON line on standard output.
fn print_failure(failure: &Failure) {
    let json = serde_json::json!({ "error": failure.message, "code": failure.code });
    println!("{json}");
}
