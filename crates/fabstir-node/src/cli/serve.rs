//! `serve`: the node's main job, an HTTP service.
//!
//! Start-up: configuration, the listening socket (a node that cannot bind
//! its port touches nothing), the data directory's lock (one node per data
//! directory), the admin token, database (integrity check, migrations),
//! keys (the default DATA_DIR/keys is created with the insecure development
//! SRS on first start outside production; a key directory named by a setting
//! must hold keys), host wallet, prover workers (results accepted before a crash
//! are queued again), the chain (the embedded ledger, or an EVM chain whose
//! id, verifier key and host registration are checked), checkpoint
//! reconciliation, health checks, then serving (and the submission worker).
//! The first line on standard output is a JSON object with the bound address.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::Failure;
use crate::api::guard::Access;
use crate::api::wire::JsonErrorListener;
use crate::api::{router, App};
use crate::chain::evm::connection::NodeKeys;
use crate::chain::evm::{BatchProver, BatchSettings};
use crate::chain::HostWallet;
use crate::chain::{ChainClient, ChainKeys, EvmChain, EvmClient, EvmSettings, LocalLedger};
use crate::checkpoint::Checkpoints;
use crate::config::{Backend, Config, Settings};
use crate::datadir::{AdminToken, DataDirLock};
use crate::gate::Gate;
use crate::health::Health;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::prover::{ProofGenerator, ProverPool};
use crate::settlement::SettlementValidator;
use crate::store::Store;
use crate::threads::Pools;

/// The host wallet: a key file, `HOST_PRIVATE_KEY`, or (outside production)
/// a development wallet kept in the data directory.
fn load_wallet(config: &Config) -> Result<HostWallet, Failure> {
    let wallet_error = |e: crate::chain::WalletError| Failure::input("wallet", e.to_string());
    if let Some(path) = &config.wallet_key {
        return HostWallet::load(path).map_err(wallet_error);
    }
    if let Some(wallet) = HostWallet::from_env().map_err(wallet_error)? {
        return Ok(wallet);
    }
    if config.production {
        return Err(Failure::input(
            "wallet",
            "production mode needs the host wallet: set HOST_PRIVATE_KEY or wallet_key (a 0400 key file)",
        ));
    }
    let path = config.data_dir.join("wallet.key");
    if path.exists() {
        return HostWallet::load(&path).map_err(wallet_error);
    }
    let wallet = HostWallet::generate(&mut rand::rngs::OsRng);
    wallet.write_new(&path).map_err(wallet_error)?;
    tracing::warn!(path = %path.display(), address = %wallet.address_checksummed(), "created a development host wallet");
    Ok(wallet)
}

pub fn run(settings: Settings) -> Result<ExitCode, Failure> {
    let config = Config::load(settings);
    init_logging(config.as_ref().is_ok_and(|c| c.log_json));
    let config = config.map_err(|e| Failure::input("config", e.to_string()))?;
    // A key directory named by a setting must hold keys: refused before the
    // data directory is touched (only the default one is created).
    if let Some(named_by) = &config.keys_dir_named_by {
        KeyManager::check_named(&config.keys_dir, named_by)
            .map_err(|e| Failure::input("keys", e.to_string()))?;
    }
    // Bind before touching the data directory: a node that cannot listen
    // creates no keys, wallet or database and resumes no jobs.
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .map_err(|e| {
            Failure::other("listen", format!("cannot listen on {}: {e}", config.listen))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::other("listen", e.to_string()))?;
    let lock = DataDirLock::acquire(&config.data_dir).map_err(|e| match e {
        crate::datadir::DataDirError::Locked { .. } => {
            Failure::other("data_dir_locked", e.to_string())
        }
        _ => Failure::other("data_dir", e.to_string()),
    })?;
    let token = AdminToken::load(config.admin_token_file.as_deref(), &config.data_dir)
        .map_err(|e| Failure::input("admin_token", e.to_string()))?;
    let store = Arc::new(
        Store::open(&config.data_dir.join("node.db"))
            .map_err(|e| Failure::other("database", e.to_string()))?,
    );
    let database_backup = store.upgrade_backup().map(|backup| {
        eprintln!(
            "NOTE: the database was migrated from schema {} to {}; the copy from before the migration is {} \
             (to roll back to the previous release, see DEPLOYMENT.md, Upgrades).",
            backup.from_version,
            crate::store::SCHEMA_VERSION,
            backup.path.display()
        );
        backup.path.display().to_string()
    });
    let metrics = Arc::new(Metrics::new());
    let (keys, created) = KeyManager::open_configured(
        &config.keys_dir,
        config.production,
        config.keys_dir_named_by.as_deref(),
    )
    .map_err(|e| {
        metrics.key_load_failures.inc();
        Failure::input("keys", e.to_string())
    })?;
    let keys = Arc::new(keys.with_batch_srs(config.batch_srs.clone()));
    let current = keys.current();
    if current.manifest.srs.trust == fabstir_zk::SrsTrust::InsecureDev {
        let what = if created {
            "CREATED development keys"
        } else {
            "using development keys"
        };
        eprintln!(
            "WARNING: {what} in {} with the INSECURE development SRS: anyone can forge proofs for them. \
             Not for production (see --production and `fabstir-node keygen --srs`).",
            config.keys_dir.display()
        );
    }
    if config.backend == Backend::Mock {
        eprintln!("WARNING: MOCK proofs are enabled (ENABLE_REAL_EZKL=false or --mock-proofs): they prove nothing.");
    }
    let health = Arc::new(Health::new(
        store.clone(),
        config.keys_dir.clone(),
        metrics.clone(),
    ));
    let wallet = load_wallet(&config)?;
    let generator = Arc::new(ProofGenerator::new(
        config.backend,
        keys.clone(),
        config.proof_cache_size,
        config.max_proof_size,
        config.prove_timeout,
        metrics.clone(),
    ));
    let pools =
        Arc::new(Pools::new(config.threads).map_err(|e| Failure::other("threads", e.to_string()))?);
    let pool = Arc::new(ProverPool::start(
        store.clone(),
        generator.clone(),
        metrics.clone(),
        &pools,
        config.queue_capacity,
    ));
    metrics.queue_capacity.set(config.queue_capacity as i64);
    let unfinished = store
        .unfinished_jobs()
        .map_err(|e| Failure::other("database", e.to_string()))?;
    for job in &unfinished {
        pool.resume(*job);
    }
    // The one check before any payment, for settlement and checkpoints alike.
    let gate = Arc::new(Gate::new(keys.clone(), pools.verify(), config.production));
    let validator = Arc::new(
        SettlementValidator::new(store.clone(), gate.clone(), metrics.clone())
            .prune_at_settlement(config.result_retention.is_zero()),
    );
    crate::retention::spawn(store.clone(), config.result_retention, metrics.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", e.to_string()))?;
    // The chain: the embedded ledger, or an EVM chain checked before serving.
    let (chain, evm): (Arc<dyn ChainClient>, Option<Arc<EvmChain>>) = match &config.chain {
        None => (Arc::new(LocalLedger::new(store.clone())), None),
        Some(c) => {
            let settings = EvmSettings {
                rpc_url: c.rpc_url.clone(),
                marketplace: c.marketplace.into(),
                chain_id: c.chain_id,
                confirmations: c.confirmations,
                poll_interval: c.poll_interval,
                stuck_after: c.stuck_after,
                max_fee_bumps: c.max_fee_bumps,
                max_fee_per_gas: c.max_fee_per_gas.map(u128::from),
                ..EvmSettings::new(&c.rpc_url, c.marketplace.into())
            };
            let evm = runtime
                .block_on(EvmChain::connect(
                    settings,
                    &wallet,
                    NodeKeys {
                        vk_id: current.manifest.vk_id.0,
                        host_id: current.manifest.host_id.to_bytes(),
                    },
                    store.clone(),
                    metrics.clone(),
                ))
                .map_err(|e| Failure::other("chain", e.to_string()))?;
            runtime
                .block_on(evm.enable_batches(
                    BatchSettings {
                        max_batch: c.max_batch,
                        wait: c.batch_wait,
                    },
                    BatchProver {
                        generator: generator.clone(),
                        pool: pools.prover(0),
                        parameters: BatchProver::parameters(
                            current.manifest.srs.trust,
                            current.manifest.srs.source_sha256,
                            config.batch_srs.clone(),
                        ),
                    },
                ))
                .map_err(|e| Failure::other("chain", e.to_string()))?;
            tracing::info!(rpc_url = %c.rpc_url, chain_id = evm.chain_id(), marketplace = %evm.marketplace(), "submitting verified proofs to the marketplace");
            guard_keys(&evm, &runtime, &keys, &health, &current);
            (
                Arc::new(EvmClient::new(evm.clone(), runtime.handle().clone())),
                Some(evm),
            )
        }
    };
    let checkpoints = Arc::new(Checkpoints::new(
        store.clone(),
        generator.clone(),
        pools.prover(0),
        wallet,
        chain,
        gate,
        metrics.clone(),
    ));
    let reconciled = checkpoints
        .reconcile()
        .map_err(|e| Failure::other("database", e.to_string()))?;
    health.spawn_periodic(config.health_interval);
    let token_source = token.source.clone();
    let lock_path = lock.path().display().to_string();
    let access = Arc::new(Access::new(
        address,
        &config.allowed_hosts,
        &config.allowed_origins,
        token,
        config.production,
    ));
    runtime.block_on(async move {
        if let Some(evm) = evm {
            tokio::spawn(evm.run());
        }
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Failure::other("listen", e.to_string()))?;
        let signals = ShutdownSignals::install().map_err(|e| {
            Failure::other("signals", format!("cannot listen for SIGINT/SIGTERM: {e}"))
        })?;
        let hangup = listen_for_hangup();
        println!(
            "{}",
            json!({
                "listening": address.to_string(),
                "data_dir": config.data_dir.display().to_string(),
                "vk_id": current.manifest.vk_id.to_string(),
                "host_id": current.manifest.host_id.to_string(),
                "host_address": checkpoints.wallet_address(),
                "srs_trust": current.manifest.srs.trust.to_string(),
                "backend": config.backend,
                "production": config.production,
                "resumed_jobs": unfinished.len(),
                "reconciled_checkpoints": reconciled,
                "database_backup": database_backup,
                "chain": checkpoints.chain_description(),
                "admin_token": token_source,
                "lock": lock_path,
                "thread_layout": config.threads,
            })
        );
        tracing::info!(%address, resumed = unfinished.len(), "listening");
        let app = Arc::new(App {
            config,
            store,
            keys,
            generator,
            pool,
            validator,
            metrics,
            checkpoints,
            health,
            access,
            pools,
        });
        reload_keys_on_sighup(app.clone(), hangup);
        let store = app.store.clone();
        // The HTTP server's own errors (unparseable request) get JSON bodies too.
        axum::serve(JsonErrorListener::new(listener), router(app))
            .with_graceful_shutdown(shutdown_signal(signals, store))
            .await
            .map_err(|e| Failure::other("serve", e.to_string()))
    })?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// On a node serving a chain (whose start-up checks passed): key reloads
/// that would change the `host_id` or `vk_id` the marketplace knows are
/// refused, `/health` gets the `chain_host_id` check, and the key directory
/// records the registration (for `keys rotate`).
fn guard_keys(
    evm: &Arc<EvmChain>,
    runtime: &tokio::runtime::Runtime,
    keys: &Arc<KeyManager>,
    health: &Arc<Health>,
    current: &fabstir_zk::KeySet,
) {
    let host_id = current.manifest.host_id.to_bytes();
    let guard = Arc::new(ChainKeys::new(
        evm.clone(),
        runtime.handle().clone(),
        current.manifest.vk_id.0,
        host_id,
    ));
    let check = guard.clone();
    keys.guard_reloads(Box::new(move |keys| check.check_reload(keys)));
    health.watch_chain_host(guard, keys.clone(), host_id);
    let registration = crate::chain::Registration {
        chain_id: evm.chain_id(),
        marketplace: evm.marketplace().to_checksum(None),
        wallet: evm.wallet().to_checksum(None),
        host_id: current.manifest.host_id.to_string(),
    };
    if let Err(e) = crate::chain::record_registration(keys.dir(), &registration) {
        tracing::warn!(dir = %keys.dir().display(), error = %e, "cannot record the chain registration in the key directory; keys rotate cannot warn about it");
    }
}

/// SIGHUP, listened to from before the start-up line on: a SIGHUP sent as
/// soon as the node says it listens is a reload, not the signal's default
/// (the end of the process).
#[cfg(unix)]
type Hangup = std::io::Result<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

fn listen_for_hangup() -> Hangup {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    }
}

/// Reloads the keys (after `keys rotate`) on SIGHUP. Proofs in flight keep
/// the key set they started with; new work uses the new one.
fn reload_keys_on_sighup(app: Arc<App>, hangup: Hangup) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangup) = hangup else {
            tracing::error!(
                "cannot listen for SIGHUP; use POST /v1/admin/keys/reload to reload keys"
            );
            return;
        };
        while hangup.recv().await.is_some() {
            let (keys, health, production) =
                (app.keys.clone(), app.health.clone(), app.config.production);
            match tokio::task::spawn_blocking(move || health.record_reload(keys.reload(production)))
                .await
            {
                Ok(Ok(id)) => tracing::info!(vk_id = %id, "keys reloaded on SIGHUP"),
                // record_reload logged the failure and counted it.
                Ok(Err(_)) => {}
                Err(e) => tracing::error!(error = %e, "key reload task failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (app, hangup);
}

/// Waits for Ctrl-C or SIGTERM, then says how many jobs are left unfinished
/// (queued or proving): they stay in the database and are proved after the
/// next start.
/// SIGINT and SIGTERM, listened for from before the start-up line is
/// printed: a supervisor that stops the node right after it announced itself
/// gets a graceful shutdown, not the default action of the signal.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers (inside the runtime).
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for either signal.
    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn shutdown_signal(signals: ShutdownSignals, store: Arc<Store>) {
    signals.recv().await;
    // Bounded: a stuck database must not hold up the shutdown.
    let stats = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::task::spawn_blocking(move || store.stats()),
    )
    .await;
    match stats {
        Ok(Ok(Ok(stats))) if stats.queued + stats.proving == 0 => {
            tracing::info!(queued = 0, proving = 0, "shutting down: no jobs queued or proving");
        }
        Ok(Ok(Ok(stats))) => {
            let unfinished = stats.queued + stats.proving;
            let jobs = if unfinished == 1 { "job" } else { "jobs" };
            tracing::info!(
                queued = stats.queued,
                proving = stats.proving,
                "shutting down: {unfinished} {jobs} queued or proving; they are kept and resume when the node starts again"
            );
        }
        _ => tracing::info!(
            "shutting down; jobs still queued or proving (count unavailable) are kept and resume when the node starts again"
        ),
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FABSTIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: logs written to a file or a pipe
    // (journald, a collector) stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
