//! `keys`: verify, back up, restore and rotate a key directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use fabstir_zk::keystore::{self, files};
use fabstir_zk::{HostKey, InferenceResult, KeySet, ProofEnvelope, ProvingKey, Srs, VerifyingKey};
use serde_json::{json, Value};

use super::{Failure, SrsArgs};
use crate::backup::{self, BackupError};

/// Key lifecycle commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Check a key directory: manifest, SRS pin, key files, pairing, permissions, a canary proof.
    Verify {
        /// Key directory.
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write an encrypted backup of a key directory (passphrase from --passphrase-file, a prompt
    /// on a terminal, else the first line of standard input).
    Backup {
        /// Key directory.
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        dir: PathBuf,
        /// Backup file to create (mode 0400; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// File whose first line is the passphrase (else asked twice on a terminal, without
        /// echo; else the first line of standard input).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore a backup into a key directory (existing keys only with --force; they are moved aside).
    Restore {
        /// Backup file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Key directory to restore into.
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        dir: PathBuf,
        /// Replace existing keys (they are moved to DIR.replaced-<time>).
        #[arg(long)]
        force: bool,
        /// File whose first line is the passphrase (else asked on a terminal, without echo;
        /// else the first line of standard input).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Make new keys; the old set moves to DIR/retired/ and still verifies old proofs.
    Rotate {
        /// Key directory.
        #[arg(long = "keys-dir", alias = "dir", value_name = "DIR")]
        dir: PathBuf,
        /// Without --srs, the current SRS is kept.
        #[command(flatten)]
        srs: SrsArgs,
        /// Also make a new host key (a new host_id).
        #[arg(long)]
        new_host_key: bool,
        /// With --new-host-key on a key directory whose host_id a marketplace has registered: the
        /// chain's JSON-RPC endpoint, to move the wallet to the new host_id there (rotateHost, with a
        /// proof of the new key), so that the node serving it follows the new id on reload.
        #[arg(long)]
        rpc_url: Option<String>,
        /// The registered host wallet's key file (with --rpc-url) [default: HOST_PRIVATE_KEY].
        #[arg(long)]
        wallet_key: Option<PathBuf>,
        /// Rotate although a marketplace has this host_id registered, without moving it on-chain
        /// (the node serving it refuses the new keys until chain register moves the wallet).
        #[arg(long)]
        force: bool,
    },
    /// Write the verifying key for client verifiers (clients/js): the data its vk_id is computed from.
    ExportVk(super::export_vk::ExportVkArgs),
}

/// Runs a `keys` command.
pub fn run(command: KeysCommand) -> Result<ExitCode, Failure> {
    match command {
        KeysCommand::Verify { dir } => verify(&dir),
        KeysCommand::ExportVk(args) => super::export_vk::run(&args),
        KeysCommand::Backup {
            dir,
            out,
            passphrase_file,
        } => {
            let passphrase =
                backup::read_passphrase(passphrase_file.as_deref(), backup::Passphrase::New)
                    .map_err(backup_failure)?;
            let files = backup::backup(&dir, &out, &passphrase).map_err(backup_failure)?;
            println!(
                "{}",
                json!({ "backup": out.display().to_string(), "files": files })
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Restore {
            input,
            dir,
            force,
            passphrase_file,
        } => {
            let passphrase =
                backup::read_passphrase(passphrase_file.as_deref(), backup::Passphrase::Existing)
                    .map_err(backup_failure)?;
            let restored =
                backup::restore(&input, &dir, &passphrase, force).map_err(backup_failure)?;
            println!(
                "{}",
                json!({
                    "dir": dir.display().to_string(),
                    "files": restored.files,
                    "vk_id": restored.vk_id,
                    "host_id": restored.host_id,
                    "replaced": restored.replaced.map(|p| p.display().to_string()),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate {
            dir,
            srs,
            new_host_key,
            rpc_url,
            wallet_key,
            force,
        } => {
            let source = srs.ceremony()?;
            // Keys of an older circuit version are rotated to the current
            // one even with the same SRS and host key.
            let outdated = fabstir_zk::keystore::read_manifest(&dir)
                .is_ok_and(|m| m.circuit_version != fabstir_zk::CIRCUIT_VERSION);
            if source.is_none() && !new_host_key && !outdated {
                return Err(Failure::input(
                    "bad_argument",
                    "nothing to rotate: with the same SRS and host key the new keys would equal the current ones; \
                     give --srs FILE --srs-sha256 HEX and/or --new-host-key",
                ));
            }
            let registrations = registrations_of_current_host(&dir);
            let registered: Vec<String> = registrations.iter().map(describe).collect();
            // On-chain, a wallet can move to a new host_id (rotateHost), but
            // a marketplace's verifier checks one vk_id.
            let on_chain = new_host_key && source.is_none() && !outdated && rpc_url.is_some();
            if !registered.is_empty() && !force && !on_chain {
                let how = if !new_host_key || source.is_some() || outdated {
                    "new keys change the vk_id its verifier checks, which a marketplace cannot follow: deploy a verifier \
                     and marketplace for the new keys, or rotate with --force and move to them yourself"
                } else {
                    "a new host key changes the host_id: give --rpc-url URL (and --wallet-key FILE, the registered wallet) \
                     to move the wallet to the new host_id on-chain as well (rotateHost, with a proof of the new key)"
                };
                return Err(Failure::input(
                    "registered_on_chain",
                    format!(
                        "{} serves {}: a node serving it refuses keys the marketplace does not know, on reload and at start-up. \
                         Nothing was changed. {how}",
                        dir.display(),
                        registered.join(", ")
                    ),
                ));
            }
            let wallet = match (&rpc_url, on_chain && !registrations.is_empty()) {
                (Some(_), true) => Some(super::chain::load_wallet(wallet_key.as_deref())?),
                _ => None,
            };
            if let Some(wallet) = &wallet {
                let address = wallet.address_checksummed();
                if let Some(other) = registrations.iter().find(|r| r.wallet != address) {
                    return Err(Failure::input(
                        "wallet",
                        format!(
                            "{} is registered for wallet {}, not {address}: give that wallet's --wallet-key. Nothing was changed.",
                            describe(other),
                            other.wallet
                        ),
                    ));
                }
            }
            let rotation = KeySet::rotate(&dir, source.as_ref(), new_host_key, rand::rngs::OsRng)?;
            let mut transactions = Vec::new();
            if let (Some(wallet), Some(url)) = (&wallet, &rpc_url) {
                transactions = super::chain::rotate_on_chain(
                    url,
                    wallet,
                    &dir,
                    &rotation.keys,
                    &registrations,
                )
                .map_err(|e| {
                    Failure::other(
                        "rotated_off_chain_only",
                        format!(
                            "the keys in {} rotated (the previous set is in {}), but moving the wallet on-chain failed: {}. \
                             Do not reload the node yet; finish with fabstir-node chain register --rpc-url {url} --marketplace ADDRESS \
                             --keys-dir {} (it moves the wallet with rotateHost)",
                            dir.display(),
                            rotation.retired_dir.display(),
                            e.message,
                            dir.display()
                        ),
                    )
                })?;
            } else if !registered.is_empty() {
                eprintln!(
                    "WARNING: rotated with --force although {} serves {}: do not reload a node serving it before fabstir-node chain register moves the wallet to the new keys",
                    dir.display(),
                    registered.join(", ")
                );
            }
            println!(
                "{}",
                json!({
                    "dir": dir.display().to_string(),
                    "vk_id": rotation.keys.manifest.vk_id.to_string(),
                    "host_id": rotation.keys.manifest.host_id.to_string(),
                    "previous_vk_id": rotation.previous_vk_id.to_string(),
                    "previous_host_id": rotation.previous_host_id.to_string(),
                    "vk_changed": rotation.keys.manifest.vk_id != rotation.previous_vk_id,
                    "retired": rotation.retired_dir.display().to_string(),
                    "srs_trust": rotation.keys.manifest.srs.trust.to_string(),
                    "on_chain_transactions": transactions,
                })
            );
            eprintln!("rotated; a running node picks the new keys up on SIGHUP or POST /v1/admin/keys/reload");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The marketplaces the key directory's current `host_id` is registered
/// with (as `chain register` and `serve` recorded them).
fn registrations_of_current_host(dir: &Path) -> Vec<crate::chain::Registration> {
    let Ok(manifest) = keystore::read_manifest(dir) else {
        return Vec::new();
    };
    let host_id = manifest.host_id.to_string();
    crate::chain::registrations(dir)
        .into_iter()
        .filter(|r| r.host_id == host_id)
        .collect()
}

/// A registration, for messages.
fn describe(r: &crate::chain::Registration) -> String {
    format!(
        "marketplace {} on chain {} (wallet {} registered with host_id {})",
        r.marketplace, r.chain_id, r.wallet, r.host_id
    )
}

fn backup_failure(e: BackupError) -> Failure {
    let code = match e {
        BackupError::Authentication(_) => "backup_authentication",
        BackupError::Exists(_) => "keys_exist",
        BackupError::WeakPassphrase
        | BackupError::NoPassphrase
        | BackupError::PassphraseMismatch
        | BackupError::Cancelled => "passphrase",
        BackupError::NotABackup(_) | BackupError::Malformed(_) => "malformed_backup",
        BackupError::Keys(_) => "keys",
        BackupError::Io { .. } => "io",
        BackupError::Kdf(_) => "kdf",
    };
    Failure::input(code, e.to_string())
}

/// One named check of `keys verify`.
struct Checks {
    list: Vec<Value>,
    failed: Option<String>,
}

impl Checks {
    fn record<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => {
                self.list.push(json!({ "name": name, "ok": true }));
                Some(value)
            }
            Err(detail) => {
                self.list
                    .push(json!({ "name": name, "ok": false, "detail": detail }));
                self.failed.get_or_insert_with(|| name.to_string());
                None
            }
        }
    }
}

fn mode_of(path: &Path) -> Result<u32, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(0o400)
    }
}

fn verify(dir: &Path) -> Result<ExitCode, Failure> {
    let mut checks = Checks {
        list: Vec::new(),
        failed: None,
    };
    let manifest = checks.record(
        "manifest",
        keystore::read_manifest(dir).map_err(|e| e.to_string()),
    );
    let srs = manifest.as_ref().and_then(|m| {
        checks.record(
            "srs_pin",
            Srs::load_stored(
                &dir.join(files::SRS),
                &m.srs.sha256,
                m.srs.trust,
                m.srs.source_sha256,
            )
            .map(Arc::new)
            .map_err(|e| e.to_string()),
        )
    });
    let permissions = (|| -> Result<(), String> {
        for (path, limit) in [
            (dir.to_path_buf(), 0o700),
            (dir.join(files::PROVING_KEY), 0o400),
            (dir.join(files::HOST_KEY), 0o400),
        ] {
            let mode = mode_of(&path)?;
            if mode & !limit != 0 {
                return Err(format!(
                    "{} has mode {mode:04o}; expected at most {limit:04o}",
                    path.display()
                ));
            }
        }
        Ok(())
    })();
    checks.record("permissions", permissions);
    let keys = srs.as_ref().and_then(|srs| {
        let pk = checks.record(
            "proving_key",
            ProvingKey::load(&dir.join(files::PROVING_KEY), srs.clone()).map_err(|e| e.to_string()),
        );
        let vk = checks.record(
            "verifying_key",
            VerifyingKey::load(&dir.join(files::VERIFYING_KEY), srs.clone())
                .map_err(|e| e.to_string()),
        );
        pk.zip(vk)
    });
    let host = checks.record(
        "host_key",
        HostKey::load(&dir.join(files::HOST_KEY)).map_err(|e| e.to_string()),
    );
    if let (Some(manifest), Some((pk, vk)), Some(host)) = (&manifest, &keys, &host) {
        let paired = if pk.vk_id() != vk.id() || vk.id() != manifest.vk_id {
            Err(format!(
                "proving key {}, verifying key {}, manifest {}",
                pk.vk_id(),
                vk.id(),
                manifest.vk_id
            ))
        } else if host.host_id() != manifest.host_id {
            Err(format!(
                "host key {} but manifest names {}",
                host.host_id(),
                manifest.host_id
            ))
        } else {
            Ok(())
        };
        checks.record("pairing", paired);
        // The proving key's own constraints must determine every cell of the
        // witness from the free inputs (a missing constraint would let
        // proofs be forged for any key made from this circuit).
        checks.record(
            "constraints",
            pk.check_unique_witness()
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
        let canary = InferenceResult::from_json(
            br#"{"job_id": "0", "chain_id": 0, "marketplace": "0x0000000000000000000000000000000000000000",
                 "model": "fabstir canary", "prompt": "canary", "response": "canary", "tokens_used": 1}"#,
        )
        .map_err(|e| e.to_string())
        .and_then(|result| {
            let statement = result.statement(host.host_id());
            let proof = ProofEnvelope::create(pk, &statement, host, rand::rngs::OsRng).map_err(|e| e.to_string())?;
            proof.verify(vk, &statement.instance()).map_err(|e| e.to_string())
        });
        checks.record("canary_proof", canary);
    }
    let (retired, failed) = keystore::load_retired_verifiers(dir);
    let retired_result = match failed.first() {
        Some((path, e)) => Err(format!("{}: {e}", path.display())),
        None => Ok(()),
    };
    checks.record("retired_keys", retired_result);
    let ok = checks.failed.is_none();
    println!(
        "{}",
        json!({
            "ok": ok,
            "dir": dir.display().to_string(),
            "failed_check": checks.failed,
            "vk_id": manifest.as_ref().map(|m| m.vk_id.to_string()),
            "srs_trust": manifest.as_ref().map(|m| m.srs.trust.to_string()),
            "retired_verifying_keys": retired.iter().map(|(vk, _)| vk.id().to_string()).collect::<Vec<_>>(),
            "checks": checks.list,
        })
    );
    if let Some(name) = &checks.failed {
        eprintln!("key check failed: {name}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
