//! `serve`: the node's main job, an HTTP service.
//!
//! Start-up: configuration, data directory, database (with its integrity
//! check), keys (created with the insecure development SRS on first start
//! outside production), host wallet, prover workers (results accepted before
//! a crash are queued again), checkpoint reconciliation, then the listener.
//! The first line on standard output is a JSON object with the bound address.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::Failure;
use crate::chain::HostWallet;
use crate::checkpoint::{Checkpoints, LocalLedger};
use crate::config::{Backend, Config, Overrides};
use crate::http::{router, App};
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::prover::{ProofGenerator, ProverPool};
use crate::settlement::SettlementValidator;
use crate::store::Store;

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

pub fn run(overrides: Overrides, log_json: bool) -> Result<ExitCode, Failure> {
    init_logging(log_json);
    let config = Config::load(overrides).map_err(|e| Failure::input("config", e.to_string()))?;
    fabstir_zk::fsutil::create_private_dir(&config.data_dir).map_err(|e| {
        Failure::other("data_dir", format!("cannot create the data directory: {e}"))
    })?;
    let store = Arc::new(
        Store::open(&config.data_dir.join("node.db"))
            .map_err(|e| Failure::other("database", e.to_string()))?,
    );
    let metrics = Arc::new(Metrics::new());
    let (keys, created) = KeyManager::open(&config.keys_dir, config.production).map_err(|e| {
        metrics.key_load_failures.inc();
        Failure::input("keys", e.to_string())
    })?;
    let keys = Arc::new(keys);
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
    metrics.keys_loaded.set(1);
    let wallet = load_wallet(&config)?;
    let generator = Arc::new(ProofGenerator::new(
        config.backend,
        keys.clone(),
        config.proof_cache_size,
        config.max_proof_size,
        config.prove_timeout,
        metrics.clone(),
    ));
    let pool = Arc::new(ProverPool::start(
        store.clone(),
        generator.clone(),
        metrics.clone(),
        config.prover_threads,
        config.queue_capacity,
    ));
    metrics.queue_capacity.set(config.queue_capacity as i64);
    let unfinished = store
        .unfinished_jobs()
        .map_err(|e| Failure::other("database", e.to_string()))?;
    for job in &unfinished {
        pool.resume(*job);
    }
    let validator = Arc::new(SettlementValidator::new(
        store.clone(),
        keys.clone(),
        metrics.clone(),
        config.production,
    ));
    let ledger = Arc::new(LocalLedger::new(store.clone()));
    let checkpoints = Arc::new(Checkpoints::new(
        store.clone(),
        generator.clone(),
        wallet,
        ledger,
        metrics.clone(),
    ));
    let reconciled = checkpoints
        .reconcile()
        .map_err(|e| Failure::other("database", e.to_string()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", e.to_string()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                Failure::other("listen", format!("cannot listen on {}: {e}", config.listen))
            })?;
        let address = listener
            .local_addr()
            .map_err(|e| Failure::other("listen", e.to_string()))?;
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
        });
        reload_keys_on_sighup(app.clone());
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| Failure::other("serve", e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Reloads the keys (after `keys rotate`) on SIGHUP. Proofs in flight keep
/// the key set they started with; new work uses the new one.
fn reload_keys_on_sighup(app: Arc<App>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::error!(
                "cannot listen for SIGHUP; use POST /v1/admin/keys/reload to reload keys"
            );
            return;
        };
        while hangup.recv().await.is_some() {
            let (keys, metrics, production) =
                (app.keys.clone(), app.metrics.clone(), app.config.production);
            match tokio::task::spawn_blocking(move || keys.reload(production)).await {
                Ok(Ok(id)) => tracing::info!(vk_id = %id, "keys reloaded on SIGHUP"),
                Ok(Err(e)) => {
                    metrics.key_load_failures.inc();
                    tracing::error!(error = %e, "key reload on SIGHUP failed; the previous keys stay in use");
                }
                Err(e) => tracing::error!(error = %e, "key reload task failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = app;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FABSTIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
