//! Command definitions and dispatch.

mod batch_keys;
mod bench;
mod chain;
mod contracts;
mod demo;
mod evm;
mod export_vk;
mod io;
mod keygen;
mod keys;
mod load;
mod prove;
mod serve;
mod soak;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// A command failure: what to print and which exit code to return.
#[derive(Debug)]
pub struct Failure {
    /// Exit code: 2 for unreadable or malformed input, 1 otherwise.
    pub exit_code: u8,
    /// Machine-readable error code.
    pub code: &'static str,
    /// Message for the operator.
    pub message: String,
}

impl Failure {
    /// Unreadable or malformed input (exit code 2).
    pub fn input(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            exit_code: 2,
            code,
            message: message.into(),
        }
    }

    /// Any other failure (exit code 1).
    pub fn other(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            exit_code: 1,
            code,
            message: message.into(),
        }
    }
}

impl From<contracts::ToolchainError> for Failure {
    fn from(e: contracts::ToolchainError) -> Self {
        Self::other("evm_toolchain", e.to_string())
    }
}

impl From<fabstir_zk::KeyError> for Failure {
    fn from(e: fabstir_zk::KeyError) -> Self {
        Self::input("keys", e.to_string())
    }
}

/// A ceremony SRS file and the SHA-256 it must have (`keygen`, `keys rotate`).
#[derive(Debug, clap::Args)]
pub struct SrsArgs {
    /// Ceremony SRS file (halo2 ParamsKZG raw format), pinned by --srs-sha256.
    #[arg(long, requires = "srs_sha256")]
    srs: Option<PathBuf>,
    /// SHA-256 the ceremony SRS file must have (0x + 64 hex digits).
    #[arg(long, requires = "srs")]
    srs_sha256: Option<String>,
}

impl SrsArgs {
    /// The pinned ceremony file, if given.
    pub fn ceremony(&self) -> Result<Option<fabstir_zk::SrsSource>, Failure> {
        match (&self.srs, &self.srs_sha256) {
            (Some(path), Some(pin)) => Ok(Some(fabstir_zk::SrsSource::Ceremony {
                path: path.clone(),
                sha256: fabstir_zk::Digest32::parse("--srs-sha256", pin)
                    .map_err(|e| Failure::input("bad_argument", e.to_string()))?,
            })),
            _ => Ok(None),
        }
    }
}

/// Fabstir LLM host node: real zero-knowledge proofs for inference results.
#[derive(Debug, Parser)]
#[command(name = "fabstir-node", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node: the HTTP API on embedded defaults (data in ./data, 127.0.0.1:8080).
    ///
    /// Every setting is a flag, an environment variable (shown) and a TOML key of the
    /// same name (--config FILE); precedence: flag, environment, TOML, default.
    Serve {
        #[command(flatten)]
        settings: Box<crate::config::Settings>,
    },
    /// Run keygen, prove and verify end to end on a sample result and print the figures.
    Demo {
        /// Key directory to create (default: a fresh temporary directory).
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        keys_dir: Option<PathBuf>,
    },
    /// Key lifecycle: verify, backup, restore, rotate.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Create a key directory: SRS, proving and verifying keys, host key.
    Keygen {
        /// Key directory to create (must not hold keys already).
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        keys_dir: PathBuf,
        /// Without --srs, an insecure development SRS is used.
        #[command(flatten)]
        srs: SrsArgs,
    },
    /// Prove an inference result with the keys in DIR.
    Prove {
        /// Key directory.
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: PathBuf,
        /// Inference result JSON.
        #[arg(long)]
        result: PathBuf,
        /// Where to write the proof envelope JSON (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Verify a proof for an inference result, or the result's checkpoint inside a batch proof
    /// (exit 0 valid, 1 invalid, 2 malformed input).
    Verify {
        /// Key directory (only the SRS, verifying key and manifest are read).
        #[arg(long = "keys-dir", alias = "keys", value_name = "DIR")]
        keys_dir: PathBuf,
        /// Inference result JSON: the public inputs are recomputed from it.
        #[arg(long)]
        result: PathBuf,
        /// Proof envelope JSON (or binary).
        #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
        proof: Option<PathBuf>,
        /// Batch proof (FZK-BP1 binary, or a text file of its 0x hex form): checks the result's
        /// checkpoint at --tokens inside it.
        #[arg(long, value_name = "FILE")]
        batch: Option<PathBuf>,
        /// The checkpoint's cumulative tokens, with --batch (default: the result's tokens_used).
        #[arg(long, requires = "batch")]
        tokens: Option<u64>,
        /// Host the work is attributed to (default: the key directory's host).
        #[arg(long)]
        host_id: Option<String>,
        /// With --batch and keys made from a ceremony SRS: the ceremony parameters file they were
        /// made from (checked against keys.json), for batches larger than the directory's SRS gives.
        #[arg(long, value_name = "FILE", requires = "batch")]
        batch_srs: Option<PathBuf>,
    },
    /// Verify proofs on the EVM: the Solidity verifier, calldata, gas figures.
    Evm {
        #[command(subcommand)]
        command: evm::EvmCommand,
    },
    /// The marketplace on an EVM chain: deploy, register the host, a one-command demo on anvil.
    Chain {
        #[command(subcommand)]
        command: chain::ChainCommand,
    },
    /// Load a running node: submit results, wait for proofs, validate settlements; report throughput.
    Load {
        /// The node's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Results to submit.
        #[arg(long, default_value_t = 300)]
        results: usize,
        /// Client threads.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Print one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Soak a node: start it, drive mixed load for --duration with restarts (SIGKILL, SIGTERM), sample RSS,
    /// descriptors and database size, then check that no accepted job or payment went wrong.
    Soak {
        #[command(flatten)]
        args: Box<soak::SoakArgs>,
    },
    /// Measure prove, verify, batch verify and key load latency, and proof size.
    Bench {
        /// Print exactly one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Samples per figure.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Proofs per batch for batch verification.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Proofs made in parallel for the throughput figure (default: cores / --threads-per-worker).
        #[arg(long)]
        workers: Option<usize>,
        /// Threads of each worker's pool.
        #[arg(long, default_value_t = 1)]
        threads_per_worker: usize,
        /// Prove in parallel through one shared global pool (how nodes before per-worker pools did), to compare.
        #[arg(long)]
        shared_pool: bool,
    },
}

/// Parses a command line (`argv[0]` first). Besides clap's parse it records
/// which of `serve`'s settings came from environment variables, so that a
/// bad value names its variable (see [`crate::config::Config::load`]).
/// Errors are clap's: render them with [`usage_failure`] (`--help` and
/// `--version` come back as errors of kind `DisplayHelp`/`DisplayVersion`).
pub fn parse(argv: &[OsString]) -> Result<Args, clap::Error> {
    let matches = Args::command().try_get_matches_from(argv)?;
    let mut args = Args::from_arg_matches(&matches)?;
    if let (Command::Serve { settings }, Some(("serve", serve))) =
        (&mut args.command, matches.subcommand())
    {
        settings.record_sources(serve);
    }
    Ok(args)
}

/// The failure for a command line clap refused: a value that came from an
/// environment variable (the flag was not given) names the variable, with
/// code `config`; anything else is a usage error (code `usage`, exit 2)
/// whose message is clap's first line, its tips and the command's usage.
pub fn usage_failure(error: &clap::Error, argv: &[OsString]) -> Failure {
    environment_failure(error, argv)
        .unwrap_or_else(|| Failure::input("usage", usage_message(error)))
}

/// clap's error in one line: what is wrong, its tips, the usage.
fn usage_message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a subcommand is required".to_string()
    } else {
        lines
            .first()
            .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
            .unwrap_or_else(|| error.kind().to_string())
    };
    let mut message = what;
    // A first line ending in a colon is followed by its list (missing arguments).
    if message.ends_with(':') {
        let listed: Vec<&str> = lines
            .iter()
            .skip(1)
            .take_while(|l| !l.starts_with("tip: ") && !l.starts_with("Usage: "))
            .copied()
            .collect();
        message.push(' ');
        message.push_str(&listed.join(", "));
    }
    for tip in lines.iter().filter_map(|l| l.strip_prefix("tip: ")) {
        message.push_str("; ");
        message.push_str(tip);
    }
    if let Some(usage) = lines.iter().find_map(|l| l.strip_prefix("Usage: ")) {
        message.push_str("; usage: ");
        message.push_str(usage);
    }
    message
}

/// When clap refused a value that came from an environment variable (its
/// flag is not on the command line): the failure naming the variable.
fn environment_failure(error: &clap::Error, argv: &[OsString]) -> Option<Failure> {
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split([' ', '=']).next()?.strip_prefix("--")?;
    let words: Vec<&str> = argv.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let flag = format!("--{long}");
    let flag_given = words
        .iter()
        .any(|w| *w == flag || w.starts_with(&format!("{flag}=")));
    if flag_given {
        return None;
    }
    // The (sub)command the words name, then its argument.
    let mut command = Args::command();
    for word in words.iter().take_while(|w| !w.starts_with('-')) {
        match command.find_subcommand(word) {
            Some(sub) => command = sub.clone(),
            None => break,
        }
    }
    let variable = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let value = std::env::var_os(&variable)?;
    let reason = match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
            _ => usage_message(error),
        },
    };
    Some(Failure::input(
        "config",
        format!(
            "environment variable {variable}={:?}: {reason}",
            value.to_string_lossy()
        ),
    ))
}

/// Runs a command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    match args.command {
        Command::Serve { settings } => serve::run(*settings),
        Command::Demo { keys_dir } => demo::run(keys_dir),
        Command::Keys { command } => keys::run(command),
        Command::Evm { command } => evm::run(command),
        Command::Chain { command } => chain::run(command),
        Command::Keygen { keys_dir, srs } => keygen::run(&keys_dir, &srs),
        Command::Prove {
            keys_dir,
            result,
            out,
            timeout_ms,
        } => prove::run(&keys_dir, &result, &out, timeout_ms),
        Command::Verify {
            keys_dir,
            result,
            proof,
            batch,
            tokens,
            host_id,
            batch_srs,
        } => match (proof, batch) {
            (Some(proof), _) => verify::run(&keys_dir, &result, &proof, host_id.as_deref()),
            (None, Some(batch)) => verify::run_batch(verify::BatchArgs {
                keys: &keys_dir,
                result: &result,
                batch: &batch,
                tokens,
                host_id: host_id.as_deref(),
                batch_srs: batch_srs.as_deref(),
            }),
            (None, None) => Err(Failure::input(
                "bad_argument",
                "give --proof FILE (a single proof) or --batch FILE (a batch proof)",
            )),
        },
        Command::Bench {
            json,
            iterations,
            batch,
            workers,
            threads_per_worker,
            shared_pool,
        } => bench::run(
            json,
            iterations,
            batch,
            bench::Layout {
                workers,
                threads_per_worker,
                shared_pool,
            },
        ),
        Command::Load {
            url,
            results,
            concurrency,
            json,
        } => load::run(&url, results, concurrency, json),
        Command::Soak { args } => soak::run(*args),
    }
}
