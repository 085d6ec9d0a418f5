//! Node configuration. Each setting is defined once, in [`Settings`]: its
//! flag, environment variable and TOML key share one name. [`Config::load`]
//! resolves them (flag, environment, legacy variables, TOML file, default)
//! into a [`Config`] and checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::threads::ThreadLayout;

/// Which proof backend produces proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Real halo2 proofs (the default).
    Real,
    /// Mock proofs for tests: a SHA-256 binding of the statement, marked as
    /// mock everywhere, refused in production mode.
    Mock,
}

/// Everything the node needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database and (by default) the keys live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Refuse a development SRS, mock proofs and missing keys at start-up.
    pub production: bool,
    /// Proof backend.
    pub backend: Backend,
    /// Key directory (default: `data_dir/keys`).
    pub keys_dir: PathBuf,
    /// The setting that named the key directory (`--keys-dir`, `environment
    /// variable FABSTIR_KEYS_DIR`, ...); `None` for the default
    /// `DATA_DIR/keys`, the only key directory created on first start.
    pub keys_dir_named_by: Option<String>,
    /// Largest proof envelope accepted or stored, in bytes.
    pub max_proof_size: usize,
    /// Entries of the proof cache.
    pub proof_cache_size: usize,
    /// Prover workers and their threads, and the verification pool.
    pub threads: ThreadLayout,
    /// Results waiting for a prover before new ones are refused with 503.
    pub queue_capacity: usize,
    /// Time allowed for one proof.
    pub prove_timeout: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Host wallet key file for checkpoint signatures (else `HOST_PRIVATE_KEY`,
    /// else a development wallet created in the data directory).
    pub wallet_key: Option<PathBuf>,
    /// Host names (besides the listen address, and `localhost` on loopback)
    /// that requests may name in their `Host` header: the names a proxy or
    /// DNS gives the node. Guards against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Web origins (`https://app.example.com`) allowed to call the node from
    /// a browser; they get CORS headers. Empty: every request carrying an
    /// `Origin` is refused.
    pub allowed_origins: Vec<String>,
    /// File holding the admin bearer token (else `FABSTIR_ADMIN_TOKEN`, else
    /// `DATA_DIR/admin.token`, created on first start).
    pub admin_token_file: Option<PathBuf>,
    /// How often the database and key-directory health checks run.
    pub health_interval: Duration,
    /// Log JSON lines instead of text.
    pub log_json: bool,
    /// The EVM chain the node submits verified proofs to; `None`: the
    /// embedded local ledger.
    pub chain: Option<ChainConfig>,
    /// How long after its settlement a job's prompt and response text is
    /// kept (then only their hashes stay); zero: deleted at settlement.
    pub result_retention: Duration,
    /// The ceremony parameters file the keys were made from (keys made from
    /// a ceremony SRS only): batch keys need more rows than the key
    /// directory stores, both to prove the chain's batches and to verify
    /// batches in `POST /v1/verify`.
    pub batch_srs: Option<PathBuf>,
}

/// A duration written with one unit: `7d`, `12h`, `30m`, `45s`, or `0`
/// (the `result_retention` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let unit = |c: char| match c {
            's' => Some(1u64),
            'm' => Some(60),
            'h' => Some(3600),
            'd' => Some(86_400),
            _ => None,
        };
        let expected = || {
            format!(
                "{text:?} is not a duration: give a number and one unit (s, m, h or d), e.g. 7d, 12h, 30m, 45s, or 0"
            )
        };
        let (number, last) = text.split_at(text.len().saturating_sub(1));
        let seconds_per = last.chars().next().and_then(unit).ok_or_else(expected)?;
        let number: u64 = number.parse().map_err(|_| expected())?;
        number
            .checked_mul(seconds_per)
            .filter(|s| *s <= 100 * 365 * 86_400)
            .map(|s| Self(Duration::from_secs(s)))
            .ok_or_else(|| format!("{text:?} is longer than 100 years"))
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An EVM chain to submit to (`rpc_url` and `marketplace` set).
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The marketplace contract's address.
    pub marketplace: [u8; 20],
    /// The chain id `eth_chainId` must return, if configured.
    pub chain_id: Option<u64>,
    /// Blocks deep a receipt must be before a submission counts as confirmed.
    pub confirmations: u64,
    /// How often the submission worker makes a pass over the outbox table.
    pub poll_interval: Duration,
    /// A transaction without a receipt for this long gets a fee bump.
    pub stuck_after: Duration,
    /// Fee bumps per transaction at most.
    pub max_fee_bumps: u32,
    /// `maxFeePerGas` cap, in wei.
    pub max_fee_per_gas: Option<u64>,
    /// Checkpoints per batch at most; 0: one transaction per checkpoint.
    pub max_batch: usize,
    /// How long a checkpoint waits for its batch to fill.
    pub batch_wait: Duration,
}

/// Every setting of `serve`, defined once: the same field is the flag
/// (`--data-dir`), the environment variable (`FABSTIR_DATA_DIR`) and the TOML
/// key (`data_dir`). Precedence: flag, then environment, then the seed's
/// legacy variables (`EZKL_*`, `PROOF_CACHE_SIZE`, `ENABLE_REAL_EZKL`), then
/// the TOML file, then the default (see [`Config::load`]).
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML configuration file; its keys are these settings' names (data_dir, listen, ...).
    #[arg(long, env = "FABSTIR_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Data directory: database, development keys and wallet, admin token, lock [default: ./data].
    #[arg(long, env = "FABSTIR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080].
    #[arg(long, env = "FABSTIR_LISTEN", value_name = "ADDR", value_parser = parse::socket_address)]
    pub listen: Option<SocketAddr>,
    /// Production mode: refuse the development SRS, mock proofs, missing keys or wallet, and
    /// require the admin token on state-changing routes [default: false].
    #[arg(long, env = "FABSTIR_PRODUCTION", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse::boolean, value_name = "BOOL")]
    pub production: Option<bool>,
    /// Mock proofs, for tests only; refused with --production [default: false]. Also set by
    /// ENABLE_REAL_EZKL=false.
    #[arg(long, env = "FABSTIR_MOCK_PROOFS", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse::boolean, value_name = "BOOL")]
    pub mock_proofs: Option<bool>,
    /// The seed's TOML key: `enable_real_ezkl = false` means mock proofs (prefer mock_proofs).
    #[arg(skip)]
    pub enable_real_ezkl: Option<bool>,
    /// Key directory [default: DATA_DIR/keys]. Also set by EZKL_PROVING_KEY_PATH or
    /// EZKL_VERIFYING_KEY_PATH (a key file inside it).
    #[arg(long, env = "FABSTIR_KEYS_DIR", value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Largest proof envelope stored, in bytes [default: 16384]. Also EZKL_MAX_PROOF_SIZE.
    #[arg(long, env = "FABSTIR_MAX_PROOF_SIZE", value_name = "BYTES", value_parser = parse::integer::<usize>)]
    pub max_proof_size: Option<usize>,
    /// Entries of the LRU proof cache [default: 1000]. Also PROOF_CACHE_SIZE.
    #[arg(long, env = "FABSTIR_PROOF_CACHE_SIZE", value_name = "N", value_parser = parse::integer::<usize>)]
    pub proof_cache_size: Option<usize>,
    /// Proofs generated in parallel: prover workers, each with a thread pool of its own
    /// [default: cores / threads_per_prover].
    #[arg(long, env = "FABSTIR_PROVER_THREADS", value_name = "N", value_parser = parse::integer::<usize>)]
    pub prover_threads: Option<usize>,
    /// Threads each prover worker proves with [default: 1].
    #[arg(long, env = "FABSTIR_THREADS_PER_PROVER", value_name = "N", value_parser = parse::integer::<usize>)]
    pub threads_per_prover: Option<usize>,
    /// Threads of the proof verification pool (settlement validation, /v1/verify)
    /// [default: the number of cores].
    #[arg(long, env = "FABSTIR_VERIFY_THREADS", value_name = "N", value_parser = parse::integer::<usize>)]
    pub verify_threads: Option<usize>,
    /// Results waiting for a prover before new ones get 503 [default: 256].
    #[arg(long, env = "FABSTIR_QUEUE_CAPACITY", value_name = "N", value_parser = parse::integer::<usize>)]
    pub queue_capacity: Option<usize>,
    /// Time allowed for one proof, in milliseconds [default: 5000].
    #[arg(long, env = "FABSTIR_PROVE_TIMEOUT_MS", value_name = "MS", value_parser = parse::integer::<u64>)]
    pub prove_timeout_ms: Option<u64>,
    /// Largest request body, in bytes [default: 4194304].
    #[arg(long, env = "FABSTIR_MAX_BODY_BYTES", value_name = "BYTES", value_parser = parse::integer::<usize>)]
    pub max_body_bytes: Option<usize>,
    /// Host wallet key file (0400) that signs checkpoints [default: HOST_PRIVATE_KEY, else a
    /// development wallet in DATA_DIR, refused in production].
    #[arg(long, env = "FABSTIR_WALLET_KEY", value_name = "FILE")]
    pub wallet_key: Option<PathBuf>,
    /// Host names requests may use besides the listen address, comma-separated or repeated
    /// (the names a proxy or DNS gives the node) [default: none].
    #[arg(
        long,
        env = "FABSTIR_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "NAMES"
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Web origins allowed to call the node from a browser (they get CORS headers),
    /// comma-separated or repeated, e.g. https://app.example.com [default: none].
    #[arg(
        long,
        env = "FABSTIR_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// File holding the admin bearer token [default: FABSTIR_ADMIN_TOKEN (the token itself),
    /// else DATA_DIR/admin.token, created on first start].
    #[arg(long, env = "FABSTIR_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Milliseconds between the database and key-directory health checks [default: 30000].
    #[arg(long, env = "FABSTIR_HEALTH_INTERVAL_MS", value_name = "MS", value_parser = parse::integer::<u64>)]
    pub health_interval_ms: Option<u64>,
    /// JSON-RPC endpoint of the EVM chain to submit verified proofs to; needs --marketplace
    /// [default: none: checkpoints go to the embedded local ledger].
    #[arg(long, env = "FABSTIR_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Address of the FabstirMarketplace contract on that chain [default: none].
    #[arg(long, env = "FABSTIR_MARKETPLACE", value_name = "ADDR")]
    pub marketplace: Option<String>,
    /// Chain id the RPC endpoint must serve (eth_chainId), checked at start-up
    /// [default: whatever the endpoint serves].
    #[arg(long, env = "FABSTIR_CHAIN_ID", value_name = "ID", value_parser = parse::integer::<u64>)]
    pub chain_id: Option<u64>,
    /// Blocks deep a transaction's receipt must be before a submission counts as confirmed
    /// [default: 1].
    #[arg(long, env = "FABSTIR_CONFIRMATIONS", value_name = "N", value_parser = parse::integer::<u64>)]
    pub confirmations: Option<u64>,
    /// Milliseconds between passes of the submission worker over the outbox table [default: 500].
    #[arg(long, env = "FABSTIR_CHAIN_POLL_MS", value_name = "MS", value_parser = parse::integer::<u64>)]
    pub chain_poll_ms: Option<u64>,
    /// Milliseconds without a receipt after which a transaction is re-sent with higher fees
    /// [default: 30000].
    #[arg(long, env = "FABSTIR_STUCK_AFTER_MS", value_name = "MS", value_parser = parse::integer::<u64>)]
    pub stuck_after_ms: Option<u64>,
    /// Fee bumps per transaction at most [default: 5].
    #[arg(long, env = "FABSTIR_MAX_FEE_BUMPS", value_name = "N", value_parser = parse::integer::<u32>)]
    pub max_fee_bumps: Option<u32>,
    /// Cap on maxFeePerGas, in wei [default: none].
    #[arg(long, env = "FABSTIR_MAX_FEE_PER_GAS", value_name = "WEI", value_parser = parse::integer::<u64>)]
    pub max_fee_per_gas: Option<u64>,
    /// Checkpoints per batch at most: verified checkpoints wait in the outbox and go out together,
    /// one proof and one submitVerifiedBatch for up to this many, when the marketplace has batch
    /// verifiers; 0 sends each in its own submitVerifiedProof [default: 64].
    #[arg(long, env = "FABSTIR_MAX_BATCH", value_name = "N", value_parser = parse::integer::<usize>)]
    pub max_batch: Option<usize>,
    /// Milliseconds a checkpoint waits at most for its batch to fill before the batch goes out
    /// as it is [default: 60000].
    #[arg(long, env = "FABSTIR_BATCH_WAIT_MS", value_name = "MS", value_parser = parse::integer::<u64>)]
    pub batch_wait_ms: Option<u64>,
    /// The ceremony parameters file the keys were made from, with at least 2^13 rows: batch keys
    /// (the chain's batch proofs, and batches POST /v1/verify checks) need more rows than the key
    /// directory stores. Only for keys made from a ceremony SRS [default: none].
    #[arg(long, env = "FABSTIR_BATCH_SRS", value_name = "FILE")]
    pub batch_srs: Option<PathBuf>,
    /// How long a settled job's prompt and response text is kept after its settlement, e.g. 7d,
    /// 12h, 30m; 0 deletes it at settlement. Only their hashes stay, which is all verification,
    /// settlement and the money records need [default: 7d].
    #[arg(long, env = "FABSTIR_RESULT_RETENTION", value_name = "DURATION")]
    pub result_retention: Option<Period>,
    /// Log as JSON lines instead of text [default: false]; FABSTIR_LOG sets the filter.
    #[arg(long, env = "FABSTIR_LOG_JSON", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse::boolean, value_name = "BOOL")]
    pub log_json: Option<bool>,
    /// The settings (by id, e.g. `queue_capacity`) whose value clap took
    /// from their environment variable rather than their flag: errors name
    /// the variable ([`Settings::record_sources`]).
    #[arg(skip)]
    #[serde(skip)]
    pub from_env: BTreeSet<String>,
}

impl Settings {
    /// Records which settings came from their environment variable
    /// (`matches`: `serve`'s), so that a bad value is reported as the
    /// variable's, not as the flag's.
    pub fn record_sources(&mut self, matches: &clap::ArgMatches) {
        self.from_env = matches
            .ids()
            .filter(|id| {
                matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::EnvVariable)
            })
            .map(|id| id.as_str().to_string())
            .collect();
    }
}

/// Value parsers of the settings: each error says what was expected, and
/// the caller says where the value came from (a flag, an environment
/// variable, a TOML key).
pub mod parse {
    use std::net::SocketAddr;

    /// What an integer setting takes.
    pub const INTEGER: &str = "expected a non-negative integer";
    /// What a boolean setting takes.
    pub const BOOLEAN: &str = "expected true or false (also yes/no, on/off, 1/0)";
    /// What an address setting takes.
    pub const SOCKET_ADDRESS: &str =
        "expected an IP address and port, such as 127.0.0.1:8080 or [::1]:8080";

    /// An unsigned integer type a setting holds.
    pub trait Unsigned: std::str::FromStr {
        /// Its largest value.
        const MAX: u128;
    }
    impl Unsigned for usize {
        const MAX: u128 = usize::MAX as u128;
    }
    impl Unsigned for u64 {
        const MAX: u128 = u64::MAX as u128;
    }
    impl Unsigned for u32 {
        const MAX: u128 = u32::MAX as u128;
    }

    /// A non-negative integer (surrounding whitespace ignored).
    pub fn integer<T: Unsigned>(s: &str) -> Result<T, String> {
        let digits = s.trim();
        digits.parse().map_err(|_| {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                format!("{INTEGER} of at most {}", T::MAX)
            } else {
                INTEGER.to_string()
            }
        })
    }

    /// A boolean: true/false, yes/no, on/off, 1/0, y/n, t/f (any case).
    pub fn boolean(s: &str) -> Result<bool, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
            _ => Err(BOOLEAN.to_string()),
        }
    }

    /// An IP address and port.
    pub fn socket_address(s: &str) -> Result<SocketAddr, String> {
        s.trim().parse().map_err(|_| SOCKET_ADDRESS.to_string())
    }

    /// serde's complaint about a TOML value, in the words above.
    pub fn toml_reason(message: &str) -> String {
        let message = message.trim();
        if ["expected usize", "expected u64", "expected u32"]
            .iter()
            .any(|t| message.contains(t))
        {
            INTEGER.to_string()
        } else if message.contains("expected a boolean") {
            BOOLEAN.to_string()
        } else if message.contains("socket address") {
            SOCKET_ADDRESS.to_string()
        } else {
            message.to_string()
        }
    }
}

/// A configuration problem, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path} (named by {named_by}): {source}")]
    Read {
        path: PathBuf,
        /// `--config` or `environment variable FABSTIR_CONFIG`.
        named_by: &'static str,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
}

fn env_bool(name: &'static str) -> Result<Option<bool>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => parse::boolean(&v)
            .map(Some)
            .map_err(|reason| ConfigError::Env {
                name,
                value: v,
                reason,
            }),
    }
}

fn env_usize(name: &'static str) -> Result<Option<usize>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => parse::integer(&v)
            .map(Some)
            .map_err(|reason| ConfigError::Env {
                name,
                value: v,
                reason,
            }),
    }
}

fn env_path(name: &'static str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The directory holding `file`, which must have the key directory's file name.
fn key_dir_of(name: &'static str, file: &Path, expected: &str) -> Result<PathBuf, ConfigError> {
    if file.file_name().and_then(|n| n.to_str()) != Some(expected) {
        return Err(ConfigError::Env {
            name,
            value: file.display().to_string(),
            reason:
                "must name the key file inside a key directory created by `fabstir-node keygen`"
                    .into(),
        });
    }
    Ok(file.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The flag, or its `FABSTIR_*` variable (told apart by `from_env`).
    Cli,
    /// A legacy environment variable of the seed (`EZKL_MAX_PROOF_SIZE`, ...).
    Legacy(&'static str),
    /// The TOML file.
    File,
}

/// Resolves settings in order of precedence and remembers where each value
/// came from, so that a bad value is reported as the flag, the environment
/// variable or the file key that gave it.
struct Sources<'a> {
    from_env: &'a BTreeSet<String>,
    file: Option<&'a Path>,
    origins: BTreeMap<&'static str, Origin>,
}

impl<'a> Sources<'a> {
    fn new(cli: &'a Settings) -> Self {
        Self {
            from_env: &cli.from_env,
            file: cli.config.as_deref(),
            origins: BTreeMap::new(),
        }
    }

    /// The flag (or its variable), else the file's value.
    fn pick<T>(&mut self, id: &'static str, cli: Option<T>, file: Option<T>) -> Option<T> {
        self.pick_legacy(id, cli, None, file)
    }

    /// The flag (or its variable), else a legacy variable's, else the file's.
    fn pick_legacy<T>(
        &mut self,
        id: &'static str,
        cli: Option<T>,
        legacy: Option<(&'static str, Option<T>)>,
        file: Option<T>,
    ) -> Option<T> {
        let (origin, value) = match (cli, legacy) {
            (Some(v), _) => (Origin::Cli, Some(v)),
            (None, Some((name, Some(v)))) => (Origin::Legacy(name), Some(v)),
            (None, _) => (Origin::File, file),
        };
        if value.is_some() {
            self.origins.insert(id, origin);
        }
        value
    }

    /// The setting `id` with `value` as the operator gave it:
    /// `--queue-capacity 0`, `environment variable FABSTIR_QUEUE_CAPACITY="0"`,
    /// `config file node.toml: queue_capacity = 0`.
    fn describe(&self, id: &str, value: &dyn std::fmt::Display) -> String {
        let variable = |name: &str| {
            let raw = std::env::var_os(name).unwrap_or_default();
            format!("environment variable {name}={:?}", raw.to_string_lossy())
        };
        match self.origins.get(id) {
            Some(Origin::Cli) if self.from_env.contains(id) => {
                variable(&format!("FABSTIR_{}", id.to_ascii_uppercase()))
            }
            Some(Origin::Cli) => format!("--{} {value}", id.replace('_', "-")),
            Some(Origin::Legacy(name)) => variable(name),
            Some(Origin::File) => format!(
                "config file {}: {id} = {value}",
                self.file
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            None => format!("{id} {value} (the default)"),
        }
    }

    /// The setting that named the value: `--keys-dir`, `environment
    /// variable FABSTIR_KEYS_DIR`, `keys_dir in config file node.toml`.
    fn name(&self, id: &str) -> String {
        match self.origins.get(id) {
            Some(Origin::Cli) if self.from_env.contains(id) => {
                format!("environment variable FABSTIR_{}", id.to_ascii_uppercase())
            }
            Some(Origin::Cli) => format!("--{}", id.replace('_', "-")),
            Some(Origin::Legacy(name)) => format!("environment variable {name}"),
            Some(Origin::File) => format!(
                "{id} in config file {}",
                self.file
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            None => format!("the default {id}"),
        }
    }

    /// A bad value: which setting gave it, and why it is refused.
    fn bad(&self, id: &str, value: &dyn std::fmt::Display, reason: &str) -> ConfigError {
        ConfigError::Invalid(format!("{}: {reason}", self.describe(id, value)))
    }
}

/// The chain settings from the flags/environment (`cli`) and the file.
fn chain_config(
    cli: &Settings,
    file: &Settings,
    sources: &mut Sources,
) -> Result<Option<ChainConfig>, ConfigError> {
    let rpc_url = sources.pick("rpc_url", cli.rpc_url.clone(), file.rpc_url.clone());
    let marketplace = sources.pick(
        "marketplace",
        cli.marketplace.clone(),
        file.marketplace.clone(),
    );
    let (rpc_url, marketplace) = match (rpc_url, marketplace) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::Invalid(format!(
                "rpc_url is set ({}) but marketplace is not: give the FabstirMarketplace contract's address (--marketplace)",
                sources.name("rpc_url")
            )))
        }
        (None, Some(_)) => {
            return Err(ConfigError::Invalid(format!(
                "marketplace is set ({}) but rpc_url is not: give the chain's JSON-RPC endpoint (--rpc-url)",
                sources.name("marketplace")
            )))
        }
        (Some(url), Some(address)) => (url, address),
    };
    if !(rpc_url.starts_with("http://") || rpc_url.starts_with("https://")) {
        return Err(sources.bad(
            "rpc_url",
            &format!("{rpc_url:?}"),
            "must be an http:// or https:// URL",
        ));
    }
    let marketplace = fabstir_zk::parse_address(&marketplace).map_err(|e| {
        sources.bad(
            "marketplace",
            &format!("{marketplace:?}"),
            &format!("is not an address: {e}"),
        )
    })?;
    let confirmations = sources
        .pick("confirmations", cli.confirmations, file.confirmations)
        .unwrap_or(defaults::CONFIRMATIONS);
    if confirmations == 0 {
        return Err(sources.bad(
            "confirmations",
            &confirmations,
            "must be at least 1 (1: the block that includes the transaction)",
        ));
    }
    let poll = sources
        .pick("chain_poll_ms", cli.chain_poll_ms, file.chain_poll_ms)
        .unwrap_or(defaults::CHAIN_POLL_MS);
    if poll < 10 {
        return Err(sources.bad("chain_poll_ms", &poll, "must be at least 10"));
    }
    let max_batch = sources
        .pick("max_batch", cli.max_batch, file.max_batch)
        .unwrap_or(defaults::MAX_BATCH);
    if max_batch > fabstir_zk::batch::BatchSize::MAX {
        return Err(sources.bad(
            "max_batch",
            &max_batch,
            &format!(
                "must be at most {} (the largest batch proof), or 0 for no batches",
                fabstir_zk::batch::BatchSize::MAX
            ),
        ));
    }
    let batch_wait = sources
        .pick("batch_wait_ms", cli.batch_wait_ms, file.batch_wait_ms)
        .unwrap_or(defaults::BATCH_WAIT_MS);
    Ok(Some(ChainConfig {
        rpc_url,
        marketplace: marketplace.into_array(),
        chain_id: cli.chain_id.or(file.chain_id),
        confirmations,
        poll_interval: Duration::from_millis(poll),
        stuck_after: Duration::from_millis(
            cli.stuck_after_ms
                .or(file.stuck_after_ms)
                .unwrap_or(defaults::STUCK_AFTER_MS),
        ),
        max_fee_bumps: cli
            .max_fee_bumps
            .or(file.max_fee_bumps)
            .unwrap_or(defaults::MAX_FEE_BUMPS),
        max_fee_per_gas: cli.max_fee_per_gas.or(file.max_fee_per_gas),
        max_batch,
        batch_wait: Duration::from_millis(batch_wait),
    }))
}

/// The embedded defaults.
pub mod defaults {
    use std::net::SocketAddr;

    /// `data_dir`.
    pub const DATA_DIR: &str = "./data";
    /// `listen`.
    pub const LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
    /// `max_proof_size`.
    pub const MAX_PROOF_SIZE: usize = 16 * 1024;
    /// `proof_cache_size`.
    pub const PROOF_CACHE_ENTRIES: usize = 1000;
    /// `queue_capacity`.
    pub const QUEUE_CAPACITY: usize = 256;
    /// `prove_timeout_ms`.
    pub const PROVE_TIMEOUT_MS: u64 = 5000;
    /// `max_body_bytes`.
    pub const MAX_BODY_BYTES: usize = 4 << 20;
    /// `health_interval_ms`.
    pub const HEALTH_INTERVAL_MS: u64 = 30_000;
    /// `confirmations`.
    pub const CONFIRMATIONS: u64 = 1;
    /// `chain_poll_ms`.
    pub const CHAIN_POLL_MS: u64 = 500;
    /// `stuck_after_ms`.
    pub const STUCK_AFTER_MS: u64 = 30_000;
    /// `max_fee_bumps`.
    pub const MAX_FEE_BUMPS: u32 = 5;
    /// `max_batch`: the largest batch measured to meet the gas target (about
    /// 24k gas per checkpoint at 64, against ~445k for one per transaction;
    /// proved in under a second).
    pub const MAX_BATCH: usize = 64;
    /// `batch_wait_ms`: a checkpoint is credited within about a minute
    /// (plus confirmations), well inside the stuck-outbox alert's 10 minutes.
    pub const BATCH_WAIT_MS: u64 = 60_000;
    /// `result_retention`: a week after settlement, time for a client to
    /// dispute an answer it received.
    pub const RESULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);
}

impl Config {
    /// Builds the configuration from `cli` (flags and `FABSTIR_*` variables,
    /// as clap read them), the seed's legacy variables, the TOML file named
    /// by `cli.config`, and the defaults, in that order of precedence.
    /// `production` is on when any source turns it on. A bad value is
    /// reported as the flag, environment variable or file key that gave it.
    pub fn load(cli: Settings) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            None => Settings::default(),
            Some(path) => {
                let named_by = if cli.from_env.contains("config") {
                    "environment variable FABSTIR_CONFIG"
                } else {
                    "--config"
                };
                read_file(path, named_by)?
            }
        };
        let mut sources = Sources::new(&cli);
        let chain = chain_config(&cli, &file, &mut sources)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let data_dir = cli
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR));

        // Keys: flag/env, then the seed's variables, then the file, then data_dir/keys.
        let env_pk = env_path("EZKL_PROVING_KEY_PATH")
            .map(|p| {
                key_dir_of(
                    "EZKL_PROVING_KEY_PATH",
                    &p,
                    fabstir_zk::keystore::files::PROVING_KEY,
                )
            })
            .transpose()?;
        let env_vk = env_path("EZKL_VERIFYING_KEY_PATH")
            .map(|p| {
                key_dir_of(
                    "EZKL_VERIFYING_KEY_PATH",
                    &p,
                    fabstir_zk::keystore::files::VERIFYING_KEY,
                )
            })
            .transpose()?;
        if let (Some(pk), Some(vk)) = (&env_pk, &env_vk) {
            if pk != vk {
                return Err(ConfigError::Invalid(
                    "EZKL_PROVING_KEY_PATH and EZKL_VERIFYING_KEY_PATH must be in the same key directory".into(),
                ));
            }
        }
        let legacy_keys = match (env_pk, env_vk) {
            (Some(dir), _) => Some(("EZKL_PROVING_KEY_PATH", Some(dir))),
            (None, Some(dir)) => Some(("EZKL_VERIFYING_KEY_PATH", Some(dir))),
            (None, None) => None,
        };
        let keys_dir = sources.pick_legacy(
            "keys_dir",
            cli.keys_dir.clone(),
            legacy_keys,
            file.keys_dir.clone(),
        );
        let keys_dir_named_by = keys_dir.as_ref().map(|_| sources.name("keys_dir"));
        let keys_dir = keys_dir.unwrap_or_else(|| data_dir.join("keys"));

        let legacy_real = env_bool("ENABLE_REAL_EZKL")?;
        let mock = cli
            .mock_proofs
            .or(legacy_real.map(|real| !real))
            .or(file.mock_proofs)
            .or(file.enable_real_ezkl.map(|real| !real))
            .unwrap_or(false);
        let max_proof_size = sources
            .pick_legacy(
                "max_proof_size",
                cli.max_proof_size,
                Some(("EZKL_MAX_PROOF_SIZE", env_usize("EZKL_MAX_PROOF_SIZE")?)),
                file.max_proof_size,
            )
            .unwrap_or(defaults::MAX_PROOF_SIZE);
        let proof_cache_size = sources
            .pick_legacy(
                "proof_cache_size",
                cli.proof_cache_size,
                Some(("PROOF_CACHE_SIZE", env_usize("PROOF_CACHE_SIZE")?)),
                file.proof_cache_size,
            )
            .unwrap_or(defaults::PROOF_CACHE_ENTRIES);
        let queue_capacity = sources
            .pick("queue_capacity", cli.queue_capacity, file.queue_capacity)
            .unwrap_or(defaults::QUEUE_CAPACITY);
        let health_interval_ms = sources
            .pick(
                "health_interval_ms",
                cli.health_interval_ms,
                file.health_interval_ms,
            )
            .unwrap_or(defaults::HEALTH_INTERVAL_MS);
        let allowed_origins = sources
            .pick(
                "allowed_origins",
                cli.allowed_origins.clone(),
                file.allowed_origins.clone(),
            )
            .unwrap_or_default();
        let config = Self {
            listen: cli.listen.or(file.listen).unwrap_or(defaults::LISTEN),
            production: cli.production.unwrap_or(false) || file.production.unwrap_or(false),
            backend: if mock { Backend::Mock } else { Backend::Real },
            keys_dir,
            keys_dir_named_by,
            max_proof_size,
            proof_cache_size,
            threads: {
                let per_prover = cli
                    .threads_per_prover
                    .or(file.threads_per_prover)
                    .unwrap_or(1)
                    .max(1);
                ThreadLayout {
                    prover_workers: cli
                        .prover_threads
                        .or(file.prover_threads)
                        .unwrap_or((cores / per_prover).max(1))
                        .max(1),
                    threads_per_prover: per_prover,
                    verify_threads: cli
                        .verify_threads
                        .or(file.verify_threads)
                        .unwrap_or(cores)
                        .max(1),
                }
            },
            queue_capacity,
            prove_timeout: Duration::from_millis(
                cli.prove_timeout_ms
                    .or(file.prove_timeout_ms)
                    .unwrap_or(defaults::PROVE_TIMEOUT_MS),
            ),
            max_body_bytes: cli
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults::MAX_BODY_BYTES),
            wallet_key: cli.wallet_key.clone().or(file.wallet_key),
            allowed_hosts: cli
                .allowed_hosts
                .clone()
                .or(file.allowed_hosts)
                .unwrap_or_default(),
            allowed_origins,
            admin_token_file: cli.admin_token_file.clone().or(file.admin_token_file),
            health_interval: Duration::from_millis(health_interval_ms),
            log_json: cli.log_json.or(file.log_json).unwrap_or(false),
            result_retention: cli
                .result_retention
                .or(file.result_retention)
                .map_or(defaults::RESULT_RETENTION, |p| p.0),
            batch_srs: cli.batch_srs.clone().or(file.batch_srs.clone()),
            chain,
            data_dir,
        };
        config.validate(&sources)?;
        Ok(config)
    }

    fn validate(&self, sources: &Sources) -> Result<(), ConfigError> {
        let ms = self.health_interval.as_millis();
        if ms < 100 {
            return Err(sources.bad("health_interval_ms", &ms, "must be at least 100"));
        }
        for origin in &self.allowed_origins {
            let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
            if !scheme_ok || origin.trim_end_matches('/').matches('/').count() != 2 {
                return Err(sources.bad(
                    "allowed_origins",
                    &format!("{origin:?}"),
                    "not an origin (scheme://host[:port], no path)",
                ));
            }
        }
        if self.queue_capacity == 0 {
            return Err(sources.bad("queue_capacity", &0, "must be at least 1"));
        }
        let envelope_len = fabstir_zk::ProofLayout::get().envelope_len();
        if self.max_proof_size < envelope_len {
            return Err(sources.bad(
                "max_proof_size",
                &self.max_proof_size,
                &format!("smaller than a proof envelope ({envelope_len} bytes)"),
            ));
        }
        if self.production && self.backend == Backend::Mock {
            return Err(ConfigError::Invalid(
                "production mode refuses mock proofs: unset ENABLE_REAL_EZKL=false / --mock-proofs"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Reads the TOML file. A bad value names the file and the key
/// (`config file node.toml: queue_capacity = "abc": expected a non-negative
/// integer`); a syntax error gives the line.
fn read_file(path: &Path, named_by: &'static str) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        named_by,
        source,
    })?;
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    match Settings::deserialize(toml::Value::Table(table.clone())) {
        Ok(settings) => Ok(settings),
        Err(whole) => {
            // Find the key: each one alone.
            for (key, value) in &table {
                let mut one = toml::Table::new();
                one.insert(key.clone(), value.clone());
                if let Err(e) = Settings::deserialize(toml::Value::Table(one)) {
                    let message = e.message();
                    if message.contains("unknown field") {
                        return Err(parse_error(format!("unknown key {key}: {message}")));
                    }
                    return Err(parse_error(format!(
                        "{key} = {value}: {}",
                        parse::toml_reason(message)
                    )));
                }
            }
            Err(parse_error(whole.message().to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// `serve`'s settings as a command of their own.
    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Settings {
        Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .settings
    }

    #[test]
    fn every_setting_is_a_flag_an_environment_variable_and_a_toml_key_of_one_name() {
        let command = Serve::command();
        let mut seen = 0;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" {
                continue;
            }
            seen += 1;
            let long = arg.get_long().unwrap_or_else(|| panic!("{id} has no flag"));
            assert_eq!(long, id.replace('_', "-"), "flag of {id}");
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("{id} has no environment variable"));
            assert_eq!(
                env.to_str().unwrap(),
                format!("FABSTIR_{}", id.to_ascii_uppercase()),
                "environment variable of {id}"
            );
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                id == "config" || help.contains("[default:"),
                "{id}: the help does not give the default"
            );
            if id != "config" {
                // The TOML key exists (a wrong type is another error than
                // an unknown key).
                let error = toml::from_str::<Settings>(&format!("{id} = \"?\""))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(!error.contains("unknown field"), "{id}: {error}");
            }
        }
        assert!(seen >= 18, "only {seen} settings parsed");
        let unknown = toml::from_str::<Settings>("no_such_setting = 1").unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    }

    #[test]
    fn result_retention_takes_one_unit_and_defaults_to_a_week() {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        assert_eq!(Config::load(parse(&[])).unwrap().result_retention, days(7));
        for (text, expected) in [
            ("0", Duration::ZERO),
            ("45s", Duration::from_secs(45)),
            ("30m", Duration::from_secs(1800)),
            ("12h", Duration::from_secs(43_200)),
            ("3d", days(3)),
        ] {
            let config = Config::load(parse(&["--result-retention", text])).unwrap();
            assert_eq!(config.result_retention, expected, "{text}");
        }
        for bad in ["7", "7 days", "d", "1.5h", "99999999999d", "", "5w"] {
            let error = Serve::try_parse_from(["serve", "--result-retention", bad]).unwrap_err();
            assert!(
                error.to_string().contains("--result-retention"),
                "{bad}: {error}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "result_retention = \"36h\"\n").unwrap();
        let config = Config::load(parse(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(config.result_retention, Duration::from_secs(36 * 3600));
        std::fs::write(&file, "result_retention = \"soon\"\n").unwrap();
        let error = Config::load(parse(&["--config", file.to_str().unwrap()])).unwrap_err();
        assert!(error.to_string().contains("result_retention"), "{error}");
    }

    #[test]
    fn precedence_is_flag_then_environment_then_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "queue_capacity = 7\nprove_timeout_ms = 1234\nmax_body_bytes = 99999\nproduction = true\nmock_proofs = false\n",
        )
        .unwrap();
        let config_arg = file.to_str().unwrap();
        let from_file = Config::load(parse(&["--config", config_arg])).unwrap();
        assert_eq!(from_file.queue_capacity, 7);
        assert_eq!(from_file.prove_timeout, Duration::from_millis(1234));
        assert_eq!(from_file.max_body_bytes, 99999);
        assert!(from_file.production);
        let flag = Config::load(parse(&[
            "--config",
            config_arg,
            "--queue-capacity",
            "9",
            "--max-body-bytes",
            "5000",
        ]))
        .unwrap();
        assert_eq!((flag.queue_capacity, flag.max_body_bytes), (9, 5000));
        assert_eq!(flag.prove_timeout, Duration::from_millis(1234));
        // Production stays on when any source turns it on.
        let off = Config::load(parse(&["--config", config_arg, "--production", "false"])).unwrap();
        assert!(off.production);
        let defaults = Config::load(parse(&[])).unwrap();
        assert_eq!(defaults.queue_capacity, defaults::QUEUE_CAPACITY);
        assert_eq!(defaults.listen, defaults::LISTEN);
        assert_eq!(
            defaults.prove_timeout,
            Duration::from_millis(defaults::PROVE_TIMEOUT_MS)
        );
        assert!(!defaults.production && !defaults.log_json);
        // Boolean flags: bare, or with a value.
        assert_eq!(parse(&["--log-json"]).log_json, Some(true));
        assert_eq!(parse(&["--log-json", "no"]).log_json, Some(false));
        assert_eq!(parse(&["--mock-proofs=1"]).mock_proofs, Some(true));
        // Lists: comma-separated or repeated.
        assert_eq!(
            parse(&[
                "--allowed-hosts",
                "a.example,b.example",
                "--allowed-hosts",
                "c"
            ])
            .allowed_hosts
            .unwrap(),
            ["a.example", "b.example", "c"]
        );
    }

    fn load_error(settings: Settings) -> String {
        Config::load(settings).unwrap_err().to_string()
    }

    #[test]
    fn a_bad_value_names_the_flag_or_the_file_and_key_that_gave_it() {
        // Flags: clap's error names the flag, with the reason.
        let error = Serve::try_parse_from(["serve", "--queue-capacity", "abc"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("'--queue-capacity <N>'") && error.contains(parse::INTEGER),
            "{error}"
        );
        let error = Serve::try_parse_from(["serve", "--production", "maybe"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--production") && error.contains(parse::BOOLEAN),
            "{error}"
        );
        assert_eq!(
            load_error(parse(&["--queue-capacity", "0"])),
            "--queue-capacity 0: must be at least 1"
        );
        assert_eq!(
            load_error(parse(&["--health-interval-ms", "5"])),
            "--health-interval-ms 5: must be at least 100"
        );
        // The file: its path and the key.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let config_arg = file.to_str().unwrap();
        for (toml, expected) in [
            (
                "queue_capacity = \"abc\"",
                format!("queue_capacity = \"abc\": {}", parse::INTEGER),
            ),
            (
                "queue_capacity = -1",
                format!("queue_capacity = -1: {}", parse::INTEGER),
            ),
            (
                "listen = \"localhost\"",
                format!("listen = \"localhost\": {}", parse::SOCKET_ADDRESS),
            ),
            (
                "log_json = \"maybe\"",
                format!("log_json = \"maybe\": {}", parse::BOOLEAN),
            ),
            (
                "queue_capacity = 0",
                "queue_capacity = 0: must be at least 1".into(),
            ),
            (
                "allowed_origins = [\"https://a.example/path\"]",
                "allowed_origins = \"https://a.example/path\": not an origin".into(),
            ),
        ] {
            std::fs::write(&file, format!("data_dir = \"d\"\n{toml}\n")).unwrap();
            let error = load_error(parse(&["--config", config_arg]));
            assert!(
                error.starts_with(&format!("config file {config_arg}: {expected}")),
                "{toml}: {error}"
            );
        }
        std::fs::write(&file, "queue_capacty = 3\n").unwrap();
        let error = load_error(parse(&["--config", config_arg]));
        assert!(
            error.contains(config_arg) && error.contains("unknown key queue_capacty"),
            "{error}"
        );
        let missing = dir.path().join("missing.toml");
        let error = load_error(parse(&["--config", missing.to_str().unwrap()]));
        assert!(error.contains("(named by --config)"), "{error}");
        // A value clap took from the environment is reported as the variable
        // (the variable's own text is read when the message is made).
        let mut settings = parse(&["--queue-capacity", "0"]);
        settings.from_env.insert("queue_capacity".into());
        let error = load_error(settings);
        assert!(
            error.starts_with("environment variable FABSTIR_QUEUE_CAPACITY=")
                && error.ends_with(": must be at least 1"),
            "{error}"
        );
    }

    #[test]
    fn only_the_default_key_directory_is_unnamed() {
        let defaults = Config::load(parse(&["--data-dir", "/srv/node"])).unwrap();
        assert_eq!(defaults.keys_dir, Path::new("/srv/node/keys"));
        assert_eq!(defaults.keys_dir_named_by, None);
        let flag = Config::load(parse(&["--keys-dir", "/srv/keys"])).unwrap();
        assert_eq!(flag.keys_dir, Path::new("/srv/keys"));
        assert_eq!(flag.keys_dir_named_by.as_deref(), Some("--keys-dir"));
        let mut settings = parse(&["--keys-dir", "/srv/keys"]);
        settings.from_env.insert("keys_dir".into());
        assert_eq!(
            Config::load(settings).unwrap().keys_dir_named_by.as_deref(),
            Some("environment variable FABSTIR_KEYS_DIR")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "keys_dir = \"/srv/other\"\n").unwrap();
        let from_file = Config::load(parse(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(
            from_file.keys_dir_named_by,
            Some(format!("keys_dir in config file {}", file.display()))
        );
    }

    #[test]
    fn value_parsers_say_what_they_expect() {
        assert_eq!(parse::integer::<usize>(" 42 "), Ok(42));
        assert_eq!(parse::integer::<u32>("x"), Err(parse::INTEGER.to_string()));
        assert_eq!(parse::integer::<u32>("-1"), Err(parse::INTEGER.to_string()));
        assert_eq!(
            parse::integer::<u32>("4294967296"),
            Err(format!("{} of at most 4294967295", parse::INTEGER))
        );
        for (text, value) in [
            ("YES", true),
            ("on", true),
            ("1", true),
            ("off", false),
            ("f", false),
        ] {
            assert_eq!(parse::boolean(text), Ok(value), "{text}");
        }
        assert!(parse::boolean("maybe").is_err());
        assert!(parse::socket_address("[::1]:80").is_ok());
        assert_eq!(
            parse::socket_address("localhost:80"),
            Err(parse::SOCKET_ADDRESS.to_string())
        );
    }
}
