//! Health that can go red: what `/health`, `/health/ezkl` and the
//! `fabstir_health_ok` / `fabstir_keys_loaded` gauges report.
//!
//! Four checks, each true or false with a reason:
//! - `database`: `PRAGMA quick_check` on a fresh connection passes;
//! - `keys`: the key directory on disk still loads (a restart would work);
//! - `key_reload`: the last reload (SIGHUP or the admin route) succeeded;
//! - `prover_queue`: the queue is not full;
//!
//! and a fifth on a node serving a chain:
//! - `chain_host_id`: the `host_id` the marketplace has registered for the
//!   host wallet is the one of the keys in use and of the key directory (a
//!   `keys rotate --new-host-key` would make every submission revert, and
//!   the next start fail).
//!
//! The first two and the fifth run at start-up and then every
//! `health_interval` (a background thread; the fifth also after each
//! reload); the reload outcome is recorded when it happens; the queue is
//! read live. A failing `database` makes the node `failing` (`/health`
//! answers 503); any other failed check makes it `degraded`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabstir_zk::{KeySet, VkId};
use serde::Serialize;

use crate::keys::{KeyManager, KeysError};
use crate::metrics::Metrics;
use crate::store::{now_ms, Store};

/// The outcome of one check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// Why it failed (none when it passed).
    pub detail: Option<String>,
    /// When it last ran (ms since the epoch; `null` if it never ran).
    pub checked_at_ms: Option<i64>,
}

impl Check {
    fn passed() -> Self {
        Self {
            ok: true,
            detail: None,
            checked_at_ms: Some(now_ms()),
        }
    }

    fn failed(detail: String) -> Self {
        Self {
            ok: false,
            detail: Some(detail),
            checked_at_ms: Some(now_ms()),
        }
    }

    fn from_result<T, E: std::fmt::Display>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Self::passed(),
            Err(e) => Self::failed(e.to_string()),
        }
    }
}

/// The node's overall state.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check passes.
    Ok,
    /// The node serves, but an operator must act (see the failed checks).
    Degraded,
    /// The node cannot be trusted to keep what it accepts (database).
    Failing,
}

/// Every check, as `/health` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub database: Check,
    pub keys: Check,
    pub key_reload: Check,
    pub prover_queue: Check,
    /// Only on a node serving a chain.
    pub chain_host_id: Option<Check>,
}

impl Report {
    /// Whether the node holds usable keys that would also load after a
    /// restart, and the last reload did not fail.
    pub fn keys_loaded(&self) -> bool {
        self.keys.ok && self.key_reload.ok
    }
}

#[derive(Debug)]
struct Checks {
    database: Check,
    keys: Check,
    key_reload: Check,
    chain_host_id: Option<Check>,
}

/// The marketplace's record of the node, for the `chain_host_id` check.
pub trait RegisteredHost: Send + Sync {
    /// The `host_id` registered on-chain for the host wallet (zero: none),
    /// or why it cannot be read now.
    fn registered_host_id(&self) -> Result<[u8; 32], String>;
    /// Whose registration it is: the wallet, the marketplace, the chain.
    fn describe(&self) -> String;
}

/// What the `chain_host_id` check compares.
struct ChainWatch {
    registry: Arc<dyn RegisteredHost>,
    keys: Arc<KeyManager>,
    /// The last `host_id` read from the chain (used while it cannot be read).
    last_registered: Mutex<[u8; 32]>,
}

/// The checks and their last outcomes.
pub struct Health {
    store: Arc<Store>,
    keys_dir: PathBuf,
    metrics: Arc<Metrics>,
    checks: Mutex<Checks>,
    chain: Mutex<Option<Arc<ChainWatch>>>,
}

impl Health {
    /// Health of a node whose keys were just loaded from `keys_dir`.
    pub fn new(store: Arc<Store>, keys_dir: PathBuf, metrics: Arc<Metrics>) -> Self {
        let never = Check {
            ok: true,
            detail: None,
            checked_at_ms: None,
        };
        let health = Self {
            store,
            keys_dir,
            metrics,
            checks: Mutex::new(Checks {
                database: Check::passed(),
                keys: Check::passed(),
                key_reload: never,
                chain_host_id: None,
            }),
            chain: Mutex::new(None),
        };
        health.publish(&health.lock());
        health
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Checks> {
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome of a key reload (and passes it through).
    pub fn record_reload(&self, outcome: Result<VkId, KeysError>) -> Result<VkId, KeysError> {
        if let Err(e) = &outcome {
            self.metrics.key_load_failures.inc();
            tracing::error!(error = %e, "key reload failed; the previous keys stay in use");
        }
        let check = Check::from_result(&outcome);
        // A reload that works shows the directory loads again.
        let keys_ok = outcome.is_ok().then(Check::passed);
        let mut checks = self.lock();
        checks.key_reload = check;
        if let Some(keys) = keys_ok {
            checks.keys = keys;
        }
        self.publish(&checks);
        drop(checks);
        self.run_chain_check();
        outcome
    }

    /// Adds the `chain_host_id` check (a node serving a chain): `registered`
    /// is the `host_id` the marketplace had for the wallet at start-up.
    pub fn watch_chain_host(
        &self,
        registry: Arc<dyn RegisteredHost>,
        keys: Arc<KeyManager>,
        registered: [u8; 32],
    ) {
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(ChainWatch {
            registry,
            keys,
            last_registered: Mutex::new(registered),
        }));
        self.run_chain_check();
    }

    /// Runs the `chain_host_id` check now (when the node serves a chain).
    pub fn run_chain_check(&self) {
        let Some(watch) = self.chain.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        let check = watch.check();
        if let Some(detail) = &check.detail {
            tracing::error!(detail = %detail, "the host_id registered on-chain is not the node's; submissions would revert");
        }
        let mut checks = self.lock();
        checks.chain_host_id = Some(check);
        self.publish(&checks);
    }

    /// Runs the database and key-directory checks now.
    pub fn run_checks(&self) {
        let database = Check::from_result(&self.store.quick_check());
        let loaded = KeySet::load(&self.keys_dir);
        if let Err(e) = &loaded {
            self.metrics.key_load_failures.inc();
            tracing::error!(error = %e, dir = %self.keys_dir.display(), "the key directory no longer loads; a restart would fail");
        }
        if let Some(detail) = &database.detail {
            tracing::error!(error = %detail, "database integrity check failed");
        }
        let keys = Check::from_result(&loaded);
        let mut checks = self.lock();
        checks.database = database;
        checks.keys = keys;
        self.publish(&checks);
        drop(checks);
        self.run_chain_check();
    }

    /// Runs [`Health::run_checks`] every `interval` on a background thread.
    pub fn spawn_periodic(self: &Arc<Self>, interval: Duration) {
        let health = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("health".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                match health.upgrade() {
                    Some(health) => health.run_checks(),
                    None => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the health checks");
        }
    }

    /// Every check now, with the queue's live state.
    pub fn report(&self, queue_depth: usize, queue_capacity: usize) -> Report {
        let checks = self.lock();
        let prover_queue = if queue_depth >= queue_capacity {
            Check::failed(format!(
                "the prover queue is full ({queue_depth} of {queue_capacity}); new results get 503"
            ))
        } else {
            Check::passed()
        };
        let chain_ok = checks.chain_host_id.as_ref().is_none_or(|c| c.ok);
        let status = if !checks.database.ok {
            Status::Failing
        } else if checks.keys.ok && checks.key_reload.ok && prover_queue.ok && chain_ok {
            Status::Ok
        } else {
            Status::Degraded
        };
        Report {
            status,
            database: checks.database.clone(),
            keys: checks.keys.clone(),
            key_reload: checks.key_reload.clone(),
            prover_queue,
            chain_host_id: checks.chain_host_id.clone(),
        }
    }

    /// Sets the gauges from `checks` (called with the lock held, so that the
    /// gauges and `/health` never disagree; the queue gauge is set by
    /// [`Health::publish_queue`]).
    fn publish(&self, checks: &Checks) {
        let gauge = |check: &str, ok: bool| {
            self.metrics
                .health_ok
                .with_label_values(&[check])
                .set(i64::from(ok));
        };
        gauge("database", checks.database.ok);
        gauge("keys", checks.keys.ok);
        gauge("key_reload", checks.key_reload.ok);
        if let Some(check) = &checks.chain_host_id {
            gauge("chain_host_id", check.ok);
        }
        self.metrics
            .keys_loaded
            .set(i64::from(checks.keys.ok && checks.key_reload.ok));
    }

    /// Sets the queue's gauge (called when metrics are scraped).
    pub fn publish_queue(&self, queue_depth: usize, queue_capacity: usize) {
        self.metrics
            .health_ok
            .with_label_values(&["prover_queue"])
            .set(i64::from(queue_depth < queue_capacity));
    }
}

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl ChainWatch {
    /// The registered `host_id` (the last one read when the chain cannot be
    /// asked now) against the keys in use and the key directory's.
    fn check(&self) -> Check {
        let mut last = self
            .last_registered
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match self.registry.registered_host_id() {
            Ok(id) => *last = id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the host_id registered on-chain; comparing with the last one read")
            }
        }
        let registered = *last;
        drop(last);
        let who = self.registry.describe();
        if registered == [0; 32] {
            return Check::failed(format!(
                "{who} is not registered with the marketplace: submissions revert (HostNotRegistered); register it (the chain register command)"
            ));
        }
        let loaded = self.keys.current().manifest.host_id.to_bytes();
        let dir = self.keys.dir();
        // The `keys` check reports a directory that does not load.
        let Ok(on_disk) = fabstir_zk::keystore::read_manifest(dir).map(|m| m.host_id) else {
            return if loaded == registered {
                Check::passed()
            } else {
                self.keys_in_use_differ(&loaded, &registered, dir)
            };
        };
        if loaded != registered && on_disk.to_bytes() == registered {
            // The wallet moved to the key directory's new host_id
            // (rotateHost): the node follows it on reload.
            return Check::failed(format!(
                "the keys in use have host_id {}, but {who} is now registered with host_id {}, the key directory's: \
                 every submission reverts (InvalidProof) until the node reloads its keys (SIGHUP, or POST /v1/admin/keys/reload)",
                hex32(&loaded),
                hex32(&registered)
            ));
        }
        if loaded != registered {
            return self.keys_in_use_differ(&loaded, &registered, dir);
        }
        if on_disk.to_bytes() != registered {
            return Check::failed(format!(
                "the key directory {} now holds host_id {} (after keys rotate --new-host-key?), but {who} is registered with host_id {}: \
                 a reload is refused and the node would not start again with it. Move the wallet to the new host_id \
                 (fabstir-node chain register --keys-dir {}: rotateHost, with a proof of the new key), then reload; \
                 or move the previous set back from {}/retired/ (the newest one)",
                dir.display(),
                on_disk,
                hex32(&registered),
                dir.display(),
                dir.display()
            ));
        }
        Check::passed()
    }

    /// The keys in memory are not the registered ones.
    fn keys_in_use_differ(
        &self,
        loaded: &[u8; 32],
        registered: &[u8; 32],
        dir: &std::path::Path,
    ) -> Check {
        Check::failed(format!(
            "the keys in use have host_id {}, but {} is registered with host_id {}: every submission reverts (InvalidProof). \
             Move the wallet to the keys in use (fabstir-node chain register --keys-dir {}: rotateHost, with a proof of the key), \
             or put the key set with host_id {} back into {} and reload",
            hex32(loaded),
            self.registry.describe(),
            hex32(registered),
            dir.display(),
            hex32(registered),
            dir.display()
        ))
    }
}
