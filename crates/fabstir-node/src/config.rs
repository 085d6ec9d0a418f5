//! Node configuration: embedded defaults, then a TOML file, then the
//! environment (the seed's variable names), then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// Largest proof envelope accepted or stored, in bytes.
    pub max_proof_size: usize,
    /// Entries of the proof cache.
    pub proof_cache_size: usize,
    /// Proofs generated in parallel.
    pub prover_threads: usize,
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
}

/// The TOML file's form; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    production: Option<bool>,
    enable_real_ezkl: Option<bool>,
    keys_dir: Option<PathBuf>,
    max_proof_size: Option<usize>,
    proof_cache_size: Option<usize>,
    prover_threads: Option<usize>,
    queue_capacity: Option<usize>,
    prove_timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    wallet_key: Option<PathBuf>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    admin_token_file: Option<PathBuf>,
    health_interval_ms: Option<u64>,
}

/// Command-line overrides (each `None` when the flag is absent).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub production: bool,
    pub mock_proofs: bool,
    pub keys_dir: Option<PathBuf>,
    pub prover_threads: Option<usize>,
    pub queue_capacity: Option<usize>,
    pub wallet_key: Option<PathBuf>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub admin_token_file: Option<PathBuf>,
    pub health_interval_ms: Option<u64>,
}

/// A configuration problem, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

fn env_bool(name: &'static str) -> Result<Option<bool>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::Env {
                name,
                value: v,
                reason: "expected true or false",
            }),
        },
    }
}

fn env_usize(name: &'static str) -> Result<Option<usize>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Env {
            name,
            value: v,
            reason: "expected a non-negative integer",
        }),
    }
}

fn env_list(name: &'static str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn env_u64(name: &'static str) -> Result<Option<u64>, ConfigError> {
    Ok(env_usize(name)?.map(|v| v as u64))
}

/// The first list given: flag, environment, file.
fn first_list(
    flag: Vec<String>,
    env: Option<Vec<String>>,
    file: Option<Vec<String>>,
) -> Vec<String> {
    if !flag.is_empty() {
        return flag;
    }
    env.or(file).unwrap_or_default()
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
                "must name the key file inside a key directory created by `fabstir-node keygen`",
        });
    }
    Ok(file.parent().map(Path::to_path_buf).unwrap_or_default())
}

impl Config {
    /// Builds the configuration from all sources, in increasing precedence.
    pub fn load(overrides: Overrides) -> Result<Self, ConfigError> {
        let file = match &overrides.config_file {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));

        // Keys: flag, then the seed's environment variables, then the file, then data_dir/keys.
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
        let keys_dir = overrides
            .keys_dir
            .or(env_pk)
            .or(env_vk)
            .or(file.keys_dir)
            .unwrap_or_else(|| data_dir.join("keys"));

        let real = match (
            overrides.mock_proofs,
            env_bool("ENABLE_REAL_EZKL")?,
            file.enable_real_ezkl,
        ) {
            (true, _, _) => false,
            (false, Some(env), _) => env,
            (false, None, Some(file)) => file,
            (false, None, None) => true,
        };
        let config = Self {
            listen: overrides
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            production: overrides.production || file.production.unwrap_or(false),
            backend: if real { Backend::Real } else { Backend::Mock },
            keys_dir,
            max_proof_size: env_usize("EZKL_MAX_PROOF_SIZE")?
                .or(file.max_proof_size)
                .unwrap_or(16 * 1024),
            proof_cache_size: env_usize("PROOF_CACHE_SIZE")?
                .or(file.proof_cache_size)
                .unwrap_or(1000),
            prover_threads: overrides
                .prover_threads
                .or(file.prover_threads)
                .unwrap_or(cores)
                .max(1),
            queue_capacity: overrides
                .queue_capacity
                .or(file.queue_capacity)
                .unwrap_or(256),
            prove_timeout: Duration::from_millis(file.prove_timeout_ms.unwrap_or(5000)),
            max_body_bytes: file.max_body_bytes.unwrap_or(4 << 20),
            wallet_key: overrides.wallet_key.or(file.wallet_key),
            allowed_hosts: first_list(
                overrides.allowed_hosts,
                env_list("FABSTIR_ALLOWED_HOSTS"),
                file.allowed_hosts,
            ),
            allowed_origins: first_list(
                overrides.allowed_origins,
                env_list("FABSTIR_ALLOWED_ORIGINS"),
                file.allowed_origins,
            ),
            admin_token_file: overrides.admin_token_file.or(file.admin_token_file),
            health_interval: Duration::from_millis(
                overrides
                    .health_interval_ms
                    .or(env_u64("FABSTIR_HEALTH_INTERVAL_MS")?)
                    .or(file.health_interval_ms)
                    .unwrap_or(30_000),
            ),
            data_dir,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.health_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "health_interval_ms must be at least 100".into(),
            ));
        }
        for origin in &self.allowed_origins {
            let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
            if !scheme_ok || origin.trim_end_matches('/').matches('/').count() != 2 {
                return Err(ConfigError::Invalid(format!(
                    "allowed_origins: {origin:?} is not an origin (scheme://host[:port], no path)"
                )));
            }
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::Invalid(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if self.max_proof_size < fabstir_zk::ProofLayout::get().envelope_len() {
            return Err(ConfigError::Invalid(format!(
                "EZKL_MAX_PROOF_SIZE={} is smaller than a proof envelope ({} bytes)",
                self.max_proof_size,
                fabstir_zk::ProofLayout::get().envelope_len()
            )));
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
