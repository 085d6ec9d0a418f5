//! The Rust side of the JavaScript client's tests (`clients/js`).
//!
//! - `keys export-vk` writes the directory's key with its vk_id;
//! - the checked-in development key export the JS tests load is current;
//! - the differential corpus: proofs made by the node, valid and mutated
//!   (every public input, the proof bytes, truncation, extra bytes, another
//!   host, another key set), each with the Rust verifier's verdict, written to
//!   `FABSTIR_JS_CORPUS` (default `target/js-client/corpus.json`).
//!   `clients/js/test/differential.test.mjs` replays it and must reach the
//!   same verdict on every case (`.ci/run` runs both, in that order).

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fabstir_node::reasons::verify_reason_code;
use fabstir_zk::{
    HostKey, InferenceResult, Instance, ProofEnvelope, ProvingKey, Srs, VerifyingKey,
};
use halo2_axiom::halo2curves::bn256::Bn256;
use halo2_axiom::poly::commitment::Params as _;
use halo2_axiom::poly::kzg::commitment::ParamsKZG;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::Digest;

/// The checked-in export of the development key, loaded by the JS tests.
const FIXTURE: &str = "clients/js/test/fixtures/dev-vk.json";

/// Valid proofs in the corpus (each also gives several mutations).
const PROOFS: usize = 200;

fn corpus_path() -> PathBuf {
    std::env::var_os("FABSTIR_JS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo_root().join("target/js-client/corpus.json"))
}

#[test]
fn export_vk_writes_the_key_directorys_key_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let made = common::cli(&["keygen", "--dir", keys.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    let out = dir.path().join("vk.json");
    let run = || {
        common::cli(&[
            "keys",
            "export-vk",
            "--keys",
            keys.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let exported = run();
    assert!(exported.status.success(), "{exported:?}");
    let line: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("keys.json")).unwrap()).unwrap();
    assert_eq!(line["vk_id"], manifest["vk_id"]);
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(export["vk_id"], manifest["vk_id"]);
    assert_eq!(export["format"], "fabstir-zk verifying key");
    assert!(export["pinned"]
        .as_str()
        .unwrap()
        .starts_with("PinnedVerificationKey {"));
    // Nothing secret: the host secret's file is not in the export.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("secret"));
    // An existing file is never overwritten.
    let again = run();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    // A directory without keys is refused as bad input.
    let missing = common::cli(&[
        "keys",
        "export-vk",
        "--keys",
        dir.path().join("none").to_str().unwrap(),
        "--out",
        dir.path().join("x.json").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}

#[test]
fn checked_in_development_key_export_is_current() {
    let vk = VerifyingKey::derive(Arc::new(Srs::insecure_dev())).unwrap();
    let fresh = format!("{}\n", vk.export_json().unwrap());
    let path = common::repo_root().join(FIXTURE);
    if std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == fresh,
        "{FIXTURE} is stale: rerun with FABSTIR_REGENERATE_VECTORS=1"
    );
}

/// A ceremony-style SRS of another secret: another key set.
fn other_srs(dir: &Path) -> Srs {
    let params = ParamsKZG::<Bn256>::setup(7, ChaCha20Rng::seed_from_u64(777));
    let mut bytes = Vec::new();
    params
        .write_custom(&mut bytes, halo2_axiom::SerdeFormat::RawBytes)
        .unwrap();
    assert_eq!(params.k(), 7);
    let path = dir.join("other.params");
    std::fs::write(&path, &bytes).unwrap();
    let pin = fabstir_zk::Digest32(sha2::Sha256::digest(&bytes).into());
    Srs::load_ceremony(&path, &pin).unwrap()
}

/// A random inference result (sizes, Unicode, model by name or hash, job
/// ids up to 2^256 - 1, token counts up to 2^64 - 1).
fn random_result(rng: &mut ChaCha20Rng, i: usize) -> Value {
    let words = [
        "Paris",
        "héllo",
        "日本語",
        "🦀",
        "proof",
        "\"quoted\"",
        "tab\there",
        "line\nbreak",
    ];
    let text = |rng: &mut ChaCha20Rng| -> String {
        let n = rng.gen_range(0..12);
        (0..n)
            .map(|_| words[rng.gen_range(0..words.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut job = [0u8; 32];
    rng.fill(&mut job[..]);
    let job_id = match i % 3 {
        0 => json!(rng.gen_range(0..1_000_000u64).to_string()),
        1 => json!(format!("0x{}", hex::encode(job))),
        _ => json!(rng.gen_range(0..u32::MAX as u64)),
    };
    let mut marketplace = [0u8; 20];
    rng.fill(&mut marketplace[..]);
    let tokens = if i.is_multiple_of(5) {
        u64::MAX - i as u64
    } else {
        rng.gen_range(0..100_000u64)
    };
    let mut result = json!({
        "job_id": job_id,
        "chain_id": if i.is_multiple_of(7) { u64::MAX } else { [8453u64, 84532, 1][i % 3] },
        "marketplace": fabstir_zk::Address::from(marketplace).to_checksum(None),
        "prompt": text(rng),
        "response": text(rng),
        "tokens_used": tokens,
    });
    if i.is_multiple_of(2) {
        result["model"] = json!(format!("model-{i}.gguf"));
    } else {
        let mut hash = [0u8; 32];
        rng.fill(&mut hash[..]);
        result["model_hash"] = json!(format!("0x{}", hex::encode(hash)));
    }
    result
}

/// What the node says: `valid` or its reason code (`malformed_proof` when
/// the envelope does not parse), as `fabstir-node verify` decides.
fn rust_verdict(vk: &VerifyingKey, proof: &ProofForm, result: &Value, host: &str) -> String {
    let parsed = match proof {
        ProofForm::Json(text) => ProofEnvelope::from_json(text.as_bytes()),
        ProofForm::Binary(bytes) => ProofEnvelope::from_bytes(bytes),
    };
    let envelope = match parsed {
        Ok(e) => e,
        Err(_) => return "malformed_proof".into(),
    };
    let result = InferenceResult::from_json(result.to_string().as_bytes()).unwrap();
    let host = fabstir_zk::HostId::parse(host).unwrap();
    let expected = result.statement(host).instance_for(envelope.version());
    match envelope.verify(vk, &expected) {
        Ok(()) => "valid".into(),
        Err(e) => verify_reason_code(&e).into(),
    }
}

enum ProofForm {
    Json(String),
    Binary(Vec<u8>),
}

impl ProofForm {
    fn to_json(&self) -> Value {
        match self {
            Self::Json(text) => json!({ "form": "json", "data": text }),
            Self::Binary(bytes) => {
                json!({ "form": "binary", "data": format!("0x{}", hex::encode(bytes)) })
            }
        }
    }
}

struct Case {
    name: String,
    proof: ProofForm,
    result: Value,
    host: String,
}

/// The mutations of one valid proof (with its result and host).
fn mutations(
    kind: usize,
    envelope: &ProofEnvelope,
    result: &Value,
    host: &str,
    rng: &mut ChaCha20Rng,
) -> Case {
    let mut result = result.clone();
    let mut env = envelope.clone();
    let mut host = host.to_string();
    let json = |e: &ProofEnvelope| ProofForm::Json(e.to_json());
    // A result change with the envelope's public inputs made to match it, so
    // only the proof itself can refuse.
    let consistent = |r: &Value, h: &str, env: &mut ProofEnvelope| {
        let parsed = InferenceResult::from_json(r.to_string().as_bytes()).unwrap();
        let instance: Instance = parsed
            .statement(fabstir_zk::HostId::parse(h).unwrap())
            .instance();
        env.instance = instance;
    };
    let layout = fabstir_zk::ProofLayout::get();
    let leading = layout.leading_points;
    let scalar_at = |rng: &mut ChaCha20Rng| 64 * leading + 32 * rng.gen_range(0..layout.scalars);
    let (name, proof) = match kind {
        0 => {
            result["response"] = json!(format!("{} ", result["response"].as_str().unwrap()));
            ("response changed", json(&env))
        }
        1 => {
            result["prompt"] = json!(format!("x{}", result["prompt"].as_str().unwrap()));
            ("prompt changed", json(&env))
        }
        2 => {
            result["tokens_used"] = json!(result["tokens_used"].as_u64().unwrap() ^ 1);
            ("tokens changed", json(&env))
        }
        3 => {
            result["chain_id"] = json!(result["chain_id"].as_u64().unwrap() ^ 2);
            ("chain changed", json(&env))
        }
        4 => {
            result["marketplace"] = json!("0x0000000000000000000000000000000000000001");
            ("marketplace changed", json(&env))
        }
        5 => {
            result["job_id"] = json!("0x123456789");
            ("job changed", json(&env))
        }
        6 => {
            host = format!("0x{:064x}", rng.gen_range(1..u64::MAX));
            ("another host", json(&env))
        }
        7 => {
            if result.get("model").is_some() {
                result["model"] = json!("another-model.gguf");
            } else {
                result["model_hash"] = json!(format!("0x{}", "ab".repeat(32)));
            }
            ("model changed", json(&env))
        }
        // Each public input changed with the envelope made consistent.
        8 => {
            result["tokens_used"] = json!(result["tokens_used"].as_u64().unwrap().wrapping_add(1));
            consistent(&result, &host, &mut env);
            ("tokens changed consistently", json(&env))
        }
        9 => {
            result["chain_id"] = json!(result["chain_id"].as_u64().unwrap() ^ 4);
            consistent(&result, &host, &mut env);
            ("chain changed consistently", json(&env))
        }
        10 => {
            result["job_id"] = json!("0x1");
            consistent(&result, &host, &mut env);
            ("job changed consistently", json(&env))
        }
        11 => {
            result["marketplace"] = json!("0x00000000000000000000000000000000000000ff");
            consistent(&result, &host, &mut env);
            ("marketplace changed consistently", json(&env))
        }
        12 => {
            host = format!("0x{:064x}", rng.gen_range(1..u64::MAX));
            consistent(&result, &host, &mut env);
            ("host changed consistently", json(&env))
        }
        13 => {
            result["response"] = json!("a different response");
            consistent(&result, &host, &mut env);
            ("response changed consistently", json(&env))
        }
        // The proof bytes.
        14 => {
            let at = scalar_at(rng);
            env.proof[at + 31] ^= 1;
            env.proof[at] = 0;
            ("a scalar changed", json(&env))
        }
        15 => {
            let a = 64 * rng.gen_range(0..leading);
            let b = (a + 64) % (64 * leading);
            let (pa, pb) = (env.proof[a..a + 64].to_vec(), env.proof[b..b + 64].to_vec());
            env.proof[a..a + 64].copy_from_slice(&pb);
            env.proof[b..b + 64].copy_from_slice(&pa);
            ("two commitments swapped", json(&env))
        }
        16 => {
            let at = scalar_at(rng);
            env.proof[at..at + 32].fill(0xff);
            ("a non-canonical scalar", json(&env))
        }
        17 => {
            let at = 64 * rng.gen_range(0..leading);
            env.proof[at + 63] ^= 1;
            ("a point off the curve", json(&env))
        }
        18 => {
            let mut bytes = env.to_bytes();
            bytes.truncate(rng.gen_range(0..bytes.len()));
            ("truncated", ProofForm::Binary(bytes))
        }
        19 => {
            let mut bytes = env.to_bytes();
            bytes.push(0);
            ("a trailing byte", ProofForm::Binary(bytes))
        }
        20 => {
            let mut bytes = env.to_bytes();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= 1 << rng.gen_range(0..8);
            (
                "a bit flipped in the binary envelope",
                ProofForm::Binary(bytes),
            )
        }
        21 => {
            let len = env.to_bytes().len();
            let mut bytes = vec![0u8; len];
            rng.fill(&mut bytes[..]);
            bytes[..8].copy_from_slice(b"FZKP\x01\x02\0\0");
            (
                "random bytes after a valid header start",
                ProofForm::Binary(bytes),
            )
        }
        22 => {
            let mut bytes = env.to_bytes();
            let start = bytes.len() - env.proof.len();
            rng.fill(&mut bytes[start..]);
            ("random proof bytes", ProofForm::Binary(bytes))
        }
        23 => {
            // The last SHPLONK point replaced by the first advice commitment.
            let first = env.proof[..64].to_vec();
            let n = env.proof.len();
            env.proof[n - 64..].copy_from_slice(&first);
            ("an opening point replaced", json(&env))
        }
        24 => {
            let mut text = env.to_json();
            text.push_str(" x");
            ("JSON with trailing text", ProofForm::Json(text))
        }
        25 => {
            let text = env
                .to_json()
                .replacen("\"format\": 1", "\"format\": 1, \"format\": 1", 1);
            ("JSON with a repeated key", ProofForm::Json(text))
        }
        _ => ("valid, binary form", ProofForm::Binary(env.to_bytes())),
    };
    Case {
        name: name.to_string(),
        proof,
        result,
        host,
    }
}

const KINDS: usize = 27;

/// Mutations of each proof, kinds taken in turn (every kind occurs ~15 times).
const MUTATIONS_PER_PROOF: usize = 2;

#[test]
fn differential_corpus_for_the_js_client() {
    let dir = tempfile::tempdir().unwrap();
    let srs = Arc::new(Srs::insecure_dev());
    let pk = ProvingKey::build(srs.clone()).unwrap();
    let vk = pk.verifying_key().clone();
    let other_pk = ProvingKey::build(Arc::new(other_srs(dir.path()))).unwrap();
    let v1_pk = ProvingKey::build_version(srs, fabstir_zk::CircuitVersion::V1).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(20261127);
    let hosts: Vec<HostKey> = (0..3).map(|_| HostKey::generate(&mut rng)).collect();
    let mut cases: Vec<Case> = Vec::new();
    for i in 0..PROOFS {
        let host = &hosts[i % hosts.len()];
        let host_id = host.host_id().to_string();
        let result = random_result(&mut rng, i);
        let parsed = InferenceResult::from_json(result.to_string().as_bytes()).unwrap();
        let statement = parsed.statement(host.host_id());
        let envelope = ProofEnvelope::create(&pk, &statement, host, &mut rng).unwrap();
        cases.push(Case {
            name: "valid".into(),
            proof: ProofForm::Json(envelope.to_json()),
            result: result.clone(),
            host: host_id.clone(),
        });
        for j in 0..MUTATIONS_PER_PROOF {
            let kind = (i * MUTATIONS_PER_PROOF + j) % KINDS;
            cases.push(mutations(kind, &envelope, &result, &host_id, &mut rng));
        }
        if i.is_multiple_of(20) {
            // Another key set, and the same statement under the version 1 key.
            let other = ProofEnvelope::create(&other_pk, &statement, host, &mut rng).unwrap();
            cases.push(Case {
                name: "another key set".into(),
                proof: ProofForm::Json(other.to_json()),
                result: result.clone(),
                host: host_id.clone(),
            });
            let v1 = ProofEnvelope::create(&v1_pk, &statement, host, &mut rng).unwrap();
            cases.push(Case {
                name: "a version 1 proof".into(),
                proof: ProofForm::Binary(v1.to_bytes()),
                result: result.clone(),
                host: host_id.clone(),
            });
            // The other key set's proof under our key id: the proof must fail.
            let mut forged = other.clone();
            forged.vk_id = vk.id();
            cases.push(Case {
                name: "another key set's proof relabelled".into(),
                proof: ProofForm::Json(forged.to_json()),
                result: result.clone(),
                host: host_id.clone(),
            });
        }
    }
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    let entries: Vec<Value> = cases
        .iter()
        .map(|c| {
            let verdict = rust_verdict(&vk, &c.proof, &c.result, &c.host);
            *verdicts.entry(verdict.clone()).or_default() += 1;
            json!({
                "name": c.name,
                "proof": c.proof.to_json(),
                "result": c.result,
                "host_id": c.host,
                "rust": verdict,
            })
        })
        .collect();
    // The corpus exercises every outcome the client reports.
    for code in [
        "valid",
        "invalid_proof",
        "malformed_proof",
        "unknown_verifying_key",
        "wrong_host",
        "wrong_job",
        "wrong_chain",
        "wrong_marketplace",
        "wrong_tokens",
        "commitment_mismatch",
    ] {
        assert!(
            verdicts.get(code).copied().unwrap_or(0) > 0,
            "no case gives {code}: {verdicts:?}"
        );
    }
    assert!(
        entries.iter().filter(|e| e["name"] == "valid").count() >= 200,
        "at least 200 valid proofs"
    );
    let corpus = json!({
        "vk_id": vk.id().to_string(),
        "key": vk.export_json().unwrap(),
        "other_vk_id": other_pk.verifying_key().id().to_string(),
        "other_key": other_pk.verifying_key().export_json().unwrap(),
        "verdicts": verdicts,
        "cases": entries,
    });
    let path = corpus_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec(&corpus).unwrap()).unwrap();
    eprintln!(
        "wrote {} cases to {}: {verdicts:?}",
        entries.len(),
        path.display()
    );
}
