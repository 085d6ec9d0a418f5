//! `keygen`: create a key directory.

use std::path::Path;
use std::process::ExitCode;

use fabstir_zk::{KeySet, SrsSource, SrsTrust};
use serde_json::json;

use super::{Failure, SrsArgs};

pub fn run(dir: &Path, srs: &SrsArgs) -> Result<ExitCode, Failure> {
    let source = srs.ceremony()?.unwrap_or(SrsSource::InsecureDev);
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
