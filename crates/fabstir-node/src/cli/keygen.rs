//! `keygen`: create a key directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fabstir_zk::{Digest32, KeySet, SrsSource, SrsTrust};
use serde_json::json;

use super::Failure;

pub fn run(
    dir: &Path,
    srs: Option<PathBuf>,
    srs_sha256: Option<String>,
) -> Result<ExitCode, Failure> {
    let source = match (srs, srs_sha256) {
        (Some(path), Some(pin)) => {
            let sha256 = Digest32::parse("--srs-sha256", &pin)
                .map_err(|e| Failure::input("bad_argument", e.to_string()))?;
            SrsSource::Ceremony { path, sha256 }
        }
        _ => SrsSource::InsecureDev,
    };
    let keys = KeySet::generate(dir, &source, rand::rngs::OsRng)?;
    if keys.manifest.srs.trust == SrsTrust::InsecureDev {
        eprintln!(
            "WARNING: keys use the INSECURE development SRS: anyone can forge proofs for them. \
             Use --srs FILE --srs-sha256 HEX with a ceremony file in production."
        );
    }
    println!(
        "{}",
        json!({
            "dir": dir.display().to_string(),
            "vk_id": keys.manifest.vk_id.to_string(),
            "host_id": keys.manifest.host_id.to_string(),
            "srs_trust": keys.manifest.srs.trust.to_string(),
            "srs_sha256": keys.manifest.srs.sha256.to_string(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
