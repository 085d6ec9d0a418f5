//! Batch verifying keys for the commands: those that generate batch
//! verifiers (`chain deploy`, `evm verifier`: the `--batch-sizes` list and
//! the parameters the keys come from, the same as the node's batch keys),
//! and those that verify or export one size (`verify --batch`, `keys
//! export-vk --batch-size`).

use std::path::{Path, PathBuf};

use super::Failure;

/// Batch sizes, as `--batch-sizes` takes them.
#[derive(Debug, Clone)]
pub struct BatchSizes(pub Vec<usize>);

/// `1,16,64`, or `none`: each a supported batch size, no repeats.
pub(crate) fn parse_batch_sizes(text: &str) -> Result<BatchSizes, String> {
    if text.trim() == "none" {
        return Ok(BatchSizes(Vec::new()));
    }
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let n: usize = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a batch size (e.g. 1,16,64, or none)"))?;
        fabstir_zk::BatchSize::new(n).map_err(|e| e.to_string())?;
        if sizes.contains(&n) {
            return Err(format!("batch size {n} is listed twice"));
        }
        sizes.push(n);
    }
    Ok(BatchSizes(sizes))
}

/// The batch verifying keys of `sizes`, from the parameters the node's
/// batch keys come from: `keys_dir`'s (the development SRS at any size, or
/// its ceremony file `batch_srs`), or the development SRS without a key
/// directory. One SRS at the largest size's k, cut down for the others.
pub(crate) fn batch_keys(
    sizes: &[usize],
    keys_dir: Option<&Path>,
    batch_srs: Option<PathBuf>,
) -> Result<Vec<fabstir_zk::BatchVerifyingKey>, Failure> {
    let sizes: Vec<fabstir_zk::BatchSize> = sizes
        .iter()
        .map(|n| fabstir_zk::BatchSize::new(*n))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::input("bad_argument", format!("--batch-sizes: {e}")))?;
    let Some(k) = sizes.iter().map(|s| s.k()).max() else {
        return Ok(Vec::new());
    };
    let srs = match keys_dir {
        None => fabstir_zk::Srs::insecure_dev_shared_at(k)?,
        Some(dir) => {
            let manifest = fabstir_zk::keystore::read_manifest(dir)?;
            let parameters = crate::chain::evm::BatchProver::parameters(
                manifest.srs.trust,
                manifest.srs.source_sha256,
                batch_srs,
            );
            parameters(k).map_err(|e| {
                Failure::input(
                    "batch_srs",
                    format!("batch verifiers for {}: {e}; with keys made from a ceremony SRS give its parameters file (--batch-srs) with at least 2^{k} rows", dir.display()),
                )
            })?
        }
    };
    Ok(sizes
        .into_iter()
        .map(|size| fabstir_zk::BatchVerifyingKey::derive(srs.clone(), size))
        .collect::<Result<_, _>>()?)
}

/// The batch verifying key of `size` for a key directory loaded
/// as `vk` and `manifest` ([`crate::keys::batch_verifying_key`]): a size its
/// SRS cannot give is `unsupported_batch_size`, a ceremony file that cannot
/// be used `batch_srs` (both exit 2).
pub(crate) fn batch_key(
    vk: &fabstir_zk::VerifyingKey,
    manifest: &fabstir_zk::keystore::Manifest,
    ceremony_file: Option<&Path>,
    size: fabstir_zk::BatchSize,
) -> Result<fabstir_zk::BatchVerifyingKey, Failure> {
    crate::keys::batch_verifying_key(vk.srs(), &manifest.srs.source_sha256, ceremony_file, size)
        .map_err(|e| match (e, ceremony_file) {
            (e @ fabstir_zk::KeyError::BatchSrs { .. }, None) => {
                Failure::input("unsupported_batch_size", format!("{e} (--batch-srs FILE)"))
            }
            (e @ fabstir_zk::KeyError::BatchSrs { .. }, Some(_)) => {
                Failure::input("unsupported_batch_size", e.to_string())
            }
            (e, Some(file)) => {
                Failure::input("batch_srs", format!("--batch-srs {}: {e}", file.display()))
            }
            (e, None) => Failure::from(e),
        })
}
