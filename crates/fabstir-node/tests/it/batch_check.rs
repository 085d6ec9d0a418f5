//! A client checks its own checkpoint inside a batch proof.
//!
//! - `fabstir-node verify --batch` (binary and hex files, exit 0/1/2, a
//!   ceremony key directory refusing sizes its SRS cannot give) and
//!   `POST /v1/verify` with `batch`;
//! - `evm verifier --batch-sizes`: the batch verifiers it writes deploy and
//!   verify batch proofs;
//! - the batch differential corpus: batch proofs of batches of 2 and 4
//!   (and a few of 16, a deployed size), valid and mutated (an entry moved,
//!   two entries' tokens swapped, a padding entry given a real job, a
//!   duplicated entry, another host's entry, each public input changed,
//!   proof and encoding bytes changed, the client's own result changed).
//!   Each case gets the Rust verdicts (the batch proof as presented:
//!   `BatchProof::verify`; the client's entry: `batch::check`) and the
//!   generated Solidity batch verifier's on anvil (the proof as presented;
//!   the client's entry: its slot given the client's own public inputs),
//!   which must agree. The corpus is written to `FABSTIR_JS_BATCH_CORPUS`
//!   (default `target/js-client/batch-corpus.json`);
//!   `clients/js/test/batch.test.mjs` replays it and must reach the same
//!   verdicts.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use common::evm::{compile, Anvil};
use common::repo_root;
use fabstir_node::reasons::batch_reason_code;
use fabstir_zk::evm::{calldata, Plan};
use fabstir_zk::{
    check_result, BatchError, BatchProof, BatchProvingKey, BatchPublic, BatchSize, BatchStatement,
    BatchVerifyingKey, Fr, HostId, HostKey, InferenceResult, JobId, KeySet, Srs,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

alloy_sol_types::sol! {
    function verify(uint256[] instances, bytes proof) external view returns (bool);
    function VK_ID() external view returns (bytes32);
}

/// The batch proving key of `n` entries under the development SRS (built
/// once per size and test binary).
fn batch_pk(n: usize) -> &'static BatchProvingKey {
    static KEYS: OnceLock<Mutex<Vec<&'static BatchProvingKey>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(pk) = keys.iter().find(|pk| pk.size().get() == n) {
        return pk;
    }
    let size = BatchSize::new(n).expect("size");
    let srs = Arc::new(Srs::insecure_dev_at(size.k()).expect("srs"));
    let pk: &'static BatchProvingKey =
        Box::leak(Box::new(BatchProvingKey::build(srs, size).expect("keygen")));
    keys.push(pk);
    pk
}

fn host(seed: u64) -> HostKey {
    HostKey::from_secret(Fr::from(seed) * Fr::from(0x000b_a7c4_u64) + Fr::from(11))
}

/// A client's result: job, chain, marketplace, model (by name or hash),
/// prompt and response from `rng`.
fn client_result(rng: &mut ChaCha20Rng, chain_id: u64, marketplace: &str, i: usize) -> Value {
    let mut job = [0u8; 32];
    rng.fill(&mut job[..]);
    let job_id = if i.is_multiple_of(2) {
        json!(rng.gen_range(1..1_000_000u64).to_string())
    } else {
        json!(format!("0x{}", hex::encode(job)))
    };
    let words = ["Paris", "héllo", "日本語", "🦀", "proof", "\"quoted\""];
    let text = |rng: &mut ChaCha20Rng| -> String {
        (0..rng.gen_range(0..6))
            .map(|_| words[rng.gen_range(0..words.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut result = json!({
        "job_id": job_id,
        "chain_id": chain_id,
        "marketplace": marketplace,
        "prompt": text(rng),
        "response": text(rng),
        "tokens_used": rng.gen_range(1000..1_000_000u64),
    });
    if i.is_multiple_of(3) {
        result["model_hash"] = json!(format!("0x{}", hex::encode(job.map(|b| b ^ 0x5a))));
    } else {
        result["model"] = json!(format!("model-{i}.gguf"));
    }
    result
}

fn parse_result(result: &Value) -> InferenceResult {
    InferenceResult::from_json(result.to_string().as_bytes()).expect("test result")
}

/// A proved batch: its statement, proof and the clients' results and
/// checkpoint tokens (one per real entry, in order).
struct Batch {
    statement: BatchStatement,
    proof: BatchProof,
    clients: Vec<(Value, u64)>,
    host: HostId,
}

/// A batch of `real` checkpoints of `host`, padded to `n`, under the
/// development SRS.
fn make_batch(n: usize, real: usize, host: &HostKey, rng: &mut ChaCha20Rng) -> Batch {
    make_batch_under(batch_pk(n), real, host, rng)
}

/// A batch of `real` checkpoints of `host`, padded to `pk`'s size and
/// proved with `pk`.
fn make_batch_under(
    pk: &BatchProvingKey,
    real: usize,
    host: &HostKey,
    rng: &mut ChaCha20Rng,
) -> Batch {
    let chain_id = [84532u64, 8453, 1, u64::MAX][rng.gen_range(0..4)];
    let mut market = [0u8; 20];
    rng.fill(&mut market[..]);
    let marketplace = fabstir_zk::Address::from(market).to_checksum(None);
    let clients: Vec<(Value, u64)> = (0..real)
        .map(|i| {
            let result = client_result(rng, chain_id, &marketplace, i);
            let tokens = rng.gen_range(1..=result["tokens_used"].as_u64().expect("tokens"));
            (result, tokens)
        })
        .collect();
    let statements: Vec<fabstir_zk::Statement> = clients
        .iter()
        .map(|(r, tokens)| {
            let mut s = parse_result(r).statement(host.host_id());
            s.tokens = *tokens;
            s
        })
        .collect();
    let statement = BatchStatement::from_statements(&statements)
        .expect("batch")
        .padded(pk.size())
        .expect("padded");
    let proof = BatchProof::create(pk, &statement, host, &mut *rng).expect("prove");
    Batch {
        statement,
        proof,
        clients,
        host: host.host_id(),
    }
}

/// One case: the batch as a verifier receives it (binary form), and the
/// client's view (its result, checkpoint tokens and the host it expects).
struct Case {
    name: &'static str,
    batch: Vec<u8>,
    result: Value,
    tokens: u64,
    host: HostId,
}

/// The public inputs of `statement` after `change` (commitments recomputed
/// from the private hashes: a "consistent" change only the proof can refuse).
fn restated(statement: &BatchStatement, change: impl FnOnce(&mut BatchStatement)) -> BatchPublic {
    let mut s = statement.clone();
    change(&mut s);
    s.public()
}

const KINDS: usize = 28;

/// Mutation `kind` of `batch` (`other` is another host's batch of the same
/// size).
fn mutate(kind: usize, batch: &Batch, other: &Batch, rng: &mut ChaCha20Rng) -> Case {
    let base = &batch.proof;
    let mut proof = base.clone();
    let last = batch.clients.len() - 1;
    let (mut result, mut tokens) = batch.clients[0].clone();
    let mut host = batch.host;
    let padding = batch.statement.entries.iter().position(|e| e.is_padding());
    let second = 1.min(proof.public.entries.len() - 1);
    let name = match kind {
        0 => "valid: the first entry",
        1 => {
            (result, tokens) = batch.clients[last].clone();
            "valid: the last real entry"
        }
        2 => {
            proof.public.entries.swap(0, second);
            "an entry moved"
        }
        3 => {
            let t0 = proof.public.entries[0].tokens;
            proof.public.entries[0].tokens = proof.public.entries[second].tokens;
            proof.public.entries[second].tokens = t0;
            (result, tokens) = batch.clients[last].clone();
            "two entries' tokens swapped"
        }
        4 => match padding {
            Some(p) => {
                proof.public.entries[p].job_id = JobId::from_u64(rng.gen_range(1..u64::MAX));
                "a padding entry given a real job"
            }
            None => {
                proof.public.entries[last].job_id = JobId([0; 32]);
                (result, tokens) = batch.clients[last].clone();
                "a real entry turned into padding"
            }
        },
        5 => {
            let target = padding.unwrap_or(second);
            proof.public.entries[target] = proof.public.entries[0];
            "a duplicated entry"
        }
        6 => {
            proof.public.entries[second] = other.proof.public.entries[0];
            "another host's entry"
        }
        7 => {
            (result, tokens) = other.clients[0].clone();
            host = other.host;
            proof.public.host_id = other.proof.public.host_id;
            proof.public.entries[0] = other.proof.public.entries[0];
            "another host's entry, under that host's id"
        }
        8 => {
            proof.public.chain_id ^= 1;
            "chain_id changed"
        }
        9 => {
            let chain = batch.statement.chain_id ^ 1;
            proof.public = restated(&batch.statement, |s| s.chain_id = chain);
            result["chain_id"] = json!(chain);
            "chain_id changed consistently"
        }
        10 => {
            proof.public.marketplace = fabstir_zk::Address::from([0x42; 20]);
            "marketplace changed"
        }
        11 => {
            let market = fabstir_zk::Address::from([0x43; 20]);
            proof.public = restated(&batch.statement, |s| s.marketplace = market);
            result["marketplace"] = json!(market.to_checksum(None));
            "marketplace changed consistently"
        }
        12 => {
            proof.public.host_id = other.host;
            "host_id changed"
        }
        13 => {
            host = other.host;
            proof.public = restated(&batch.statement, |s| s.host_id = host);
            "host_id changed consistently"
        }
        14 => {
            let job = JobId::from_u64(rng.gen_range(1..u64::MAX));
            proof.public = restated(&batch.statement, |s| s.entries[0].job_id = job);
            result["job_id"] = json!(job.to_string());
            "the client's job changed consistently"
        }
        15 => {
            tokens ^= 1 << rng.gen_range(0..63);
            proof.public = restated(&batch.statement, |s| s.entries[0].tokens = tokens);
            "the client's tokens changed consistently"
        }
        16 => {
            let job = &mut proof.public.entries[second].job_id;
            job.0[rng.gen_range(0..32)] ^= 1;
            "another entry's job changed"
        }
        17 => {
            proof.public.entries[second].commitment = proof.public.entries[0].commitment;
            (result, tokens) = batch.clients[last].clone();
            "another entry's commitment changed"
        }
        18 => {
            proof.public.entries[0].commitment = other.proof.public.entries[0].commitment;
            "the client's commitment changed"
        }
        19 => {
            let at = rng.gen_range(0..proof.proof.len());
            proof.proof[at] ^= 1 << rng.gen_range(0..8);
            "a proof bit flipped"
        }
        20 => {
            let at = 32 * rng.gen_range(0..proof.proof.len() / 32);
            proof.proof[at..at + 32].fill(0xff);
            "a proof word set to 2^256 - 1"
        }
        21 => {
            proof.vk_id.0[rng.gen_range(0..32)] ^= 1;
            "vk_id changed"
        }
        22 => {
            result["response"] = json!(format!(
                "{} ",
                result["response"].as_str().expect("response")
            ));
            "the client's response differs"
        }
        23 => {
            tokens = tokens.wrapping_add(1);
            "the client's checkpoint tokens differ"
        }
        24 => {
            result["job_id"] = json!("0");
            tokens = 0;
            "the client's job is 0 (padding)"
        }
        25 => {
            host = other.host;
            "the client expects another host"
        }
        26 => {
            result["chain_id"] = json!(result["chain_id"].as_u64().expect("chain") ^ 2);
            "the client's chain differs"
        }
        _ => {
            let mut bytes = base.to_bytes();
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= 1 << rng.gen_range(0..8);
            return Case {
                name: "a bit flipped in the binary form",
                batch: bytes,
                result,
                tokens,
                host,
            };
        }
    };
    Case {
        name,
        batch: proof.to_bytes(),
        result,
        tokens,
        host,
    }
}

/// The Rust verdicts of a case: the batch proof as presented, and the
/// client's entry (`valid` or a reason code).
fn rust_verdicts(case: &Case, keys: &[&BatchVerifyingKey]) -> (String, String) {
    let proof = match BatchProof::from_bytes(&case.batch) {
        Ok(p) => p,
        Err(BatchError::Size { .. }) => {
            return (
                "unsupported_batch_size".into(),
                "unsupported_batch_size".into(),
            )
        }
        Err(_) => return ("malformed_proof".into(), "malformed_proof".into()),
    };
    let Some(vk) = keys.iter().find(|vk| vk.size() == proof.size) else {
        return (
            "unsupported_batch_size".into(),
            "unsupported_batch_size".into(),
        );
    };
    let whole = match proof.verify(vk, &proof.public) {
        Ok(()) => "valid",
        Err(BatchError::UnknownVerifyingKey { .. }) => "unknown_verifying_key",
        Err(BatchError::Malformed(_)) => "malformed_proof",
        Err(BatchError::Invalid) => "invalid_proof",
        Err(e) => panic!("{}: unexpected {e}", case.name),
    };
    let entry = match check_result(
        &proof,
        vk,
        &parse_result(&case.result),
        case.host,
        case.tokens,
    ) {
        Ok(_) => "valid",
        Err(e) => batch_reason_code(&e),
    };
    (whole.into(), entry.into())
}

/// A generated batch verifier deployed on anvil.
struct EvmVerifier {
    size: usize,
    address: common::evm::Address,
    vk_id: [u8; 32],
}

fn deploy_verifier(anvil: &Anvil, vk: &BatchVerifyingKey, dir: &Path) -> EvmVerifier {
    let plan = Plan::for_batch(vk).expect("batch plan");
    let verifier =
        fabstir_zk::evm::solidity::generate_with(&plan, fabstir_zk::evm::solidity::Mode::Loops);
    let sub = dir.join(format!("n{}", vk.size()));
    std::fs::create_dir_all(&sub).expect("dir");
    std::fs::copy(
        repo_root().join("contracts/src/IFabstirBatchVerifier.sol"),
        sub.join("IFabstirBatchVerifier.sol"),
    )
    .expect("copy the interface");
    let path = sub.join("FabstirBatchVerifier.sol");
    std::fs::write(&path, &verifier.source).expect("write the verifier");
    let compiled = compile(&path, "FabstirBatchVerifier");
    let address = anvil.deploy(&compiled.bytecode);
    let id = anvil
        .call(&address, &VK_IDCall {}.abi_encode())
        .expect("VK_ID()");
    let vk_id: [u8; 32] = id[..32].try_into().expect("bytes32");
    assert_eq!(vk_id, vk.id().0, "the contract's VK_ID is the key's");
    EvmVerifier {
        size: vk.size().get(),
        address,
        vk_id,
    }
}

/// The contract's `verify` of an instance column and proof.
fn evm_verify(anvil: &Anvil, verifier: &EvmVerifier, instances: &[Fr], proof: &[u8]) -> bool {
    let call = verifyCall {
        instances: calldata::instance_words(instances)
            .into_iter()
            .map(U256::from_be_bytes)
            .collect(),
        proof: proof.to_vec().into(),
    };
    let answer = anvil
        .call(&verifier.address, &call.abi_encode())
        .unwrap_or_else(|e| panic!("verify() reverted: {e:?}"));
    answer.len() == 32 && answer[31] == 1 && answer[..31].iter().all(|b| *b == 0)
}

/// The contract's verdicts: the proof as presented (its key id must be the
/// contract's `VK_ID`), and the client's entry: the slot of its job and
/// tokens (job 0 never), the batch's values there compared with the
/// client's own, and the instance column rebuilt with the client's own
/// chain, marketplace, host and commitment.
fn evm_verdicts(anvil: &Anvil, verifiers: &[EvmVerifier], case: &Case) -> (bool, bool) {
    let Ok(proof) = BatchProof::from_bytes(&case.batch) else {
        return (false, false);
    };
    let Some(verifier) = verifiers.iter().find(|v| v.size == proof.size.get()) else {
        return (false, false);
    };
    if proof.vk_id.0 != verifier.vk_id {
        return (false, false);
    }
    let whole = evm_verify(
        anvil,
        verifier,
        &proof.public.to_field_elements(),
        &proof.proof,
    );
    let mut statement = parse_result(&case.result).statement(case.host);
    statement.tokens = case.tokens;
    let slot = proof.public.entries.iter().position(|e| {
        e.job_id == statement.job_id
            && e.tokens == statement.tokens
            && !e.job_id.0.iter().all(|b| *b == 0)
    });
    // The client trusts nothing the batch states about its own checkpoint:
    // the batch's chain, marketplace, host and the slot's commitment must be
    // the client's own (as they are by construction when the client builds
    // the column from a transaction's calldata), then the contract decides.
    let entry = slot.is_some_and(|slot| {
        let commitment = fabstir_zk::statement::FieldHex(statement.commitment());
        if proof.public.chain_id != statement.chain_id
            || proof.public.marketplace != statement.marketplace
            || proof.public.host_id != statement.host_id
            || proof.public.entries[slot].commitment != commitment
        {
            return false;
        }
        let mut mine = proof.public.clone();
        mine.chain_id = statement.chain_id;
        mine.marketplace = statement.marketplace;
        mine.host_id = statement.host_id;
        mine.entries[slot].commitment = fabstir_zk::statement::FieldHex(statement.commitment());
        evm_verify(anvil, verifier, &mine.to_field_elements(), &proof.proof)
    });
    (whole, entry)
}

fn corpus_path() -> PathBuf {
    std::env::var_os("FABSTIR_JS_BATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/js-client/batch-corpus.json"))
}

/// Batches of each size in the corpus: (entries, batches, real entries of
/// each).
const PLAN: [(usize, usize, &[usize]); 3] = [(2, 5, &[2, 1]), (4, 5, &[4, 3, 2]), (16, 1, &[9])];

#[test]
fn batch_differential_corpus_rust_and_the_evm_agree() {
    let started = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(0xba7c_2026);
    let mut cases: Vec<(usize, Case)> = Vec::new();
    let mut kind = 0;
    for (n, batches, reals) in PLAN {
        for b in 0..batches {
            let real = reals[b % reals.len()];
            let batch = make_batch(n, real, &host(1 + b as u64), &mut rng);
            let other = make_batch(n, real.max(1), &host(100 + b as u64), &mut rng);
            // Every kind for the small sizes; a spread of them at 16.
            let kinds: Vec<usize> = if n == 16 {
                vec![0, 1, 2, 5, 6, 9, 13, 17, 19, 22]
            } else {
                (0..KINDS).collect()
            };
            for k in kinds {
                kind += 1;
                cases.push((n, mutate(k, &batch, &other, &mut rng)));
            }
        }
    }
    // A batch of a size nobody holds a key for (1).
    let lone = make_batch(1, 1, &host(7), &mut rng);
    let (result, tokens) = lone.clients[0].clone();
    cases.push((
        1,
        Case {
            name: "a batch size without a key",
            batch: lone.proof.to_bytes(),
            result,
            tokens,
            host: lone.host,
        },
    ));
    let proving = started.elapsed();

    let keys: Vec<&BatchVerifyingKey> = [2, 4, 16].map(|n| batch_pk(n).verifying_key()).into();
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let verifiers: Vec<EvmVerifier> = keys
        .iter()
        .map(|vk| deploy_verifier(&anvil, vk, dir.path()))
        .collect();
    let deployed = started.elapsed();

    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    let mut disagreements = Vec::new();
    let mut entries = Vec::new();
    for (n, case) in &cases {
        let (whole, entry) = rust_verdicts(case, &keys);
        let (evm_whole, evm_entry) = evm_verdicts(&anvil, &verifiers, case);
        if (whole == "valid") != evm_whole || (entry == "valid") != evm_entry {
            disagreements.push(format!(
                "{} (n = {n}): rust {whole}/{entry}, evm {evm_whole}/{evm_entry}",
                case.name
            ));
        }
        *verdicts.entry(format!("entry {entry}")).or_default() += 1;
        *verdicts.entry(format!("proof {whole}")).or_default() += 1;
        entries.push(json!({
            "name": case.name,
            "entries": n,
            "batch": format!("0x{}", hex::encode(&case.batch)),
            "result": case.result,
            "tokens": case.tokens,
            "host_id": case.host.to_string(),
            "proof": whole,
            "entry": entry,
            "evm": { "proof": evm_whole, "entry": evm_entry },
        }));
    }
    assert!(
        disagreements.is_empty(),
        "Rust and the EVM disagree:\n{}",
        disagreements.join("\n")
    );
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    // Every outcome a client can meet occurs.
    for code in [
        "entry valid",
        "entry invalid_proof",
        "entry malformed_proof",
        "entry not_in_batch",
        "entry commitment_mismatch",
        "entry wrong_chain",
        "entry wrong_marketplace",
        "entry wrong_host",
        "entry unknown_verifying_key",
        "entry unsupported_batch_size",
        "proof valid",
        "proof invalid_proof",
    ] {
        assert!(
            verdicts.get(code).copied().unwrap_or(0) > 0,
            "no case gives {code}: {verdicts:?}"
        );
    }
    let corpus = json!({
        "keys": keys.iter().map(|vk| json!({
            "entries": vk.size().get(),
            "vk_id": vk.id().to_string(),
            "key": vk.export_json().expect("export"),
        })).collect::<Vec<_>>(),
        "verdicts": verdicts,
        "cases": entries,
    });
    let path = corpus_path();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("corpus dir");
    std::fs::write(&path, serde_json::to_vec(&corpus).expect("json")).expect("write corpus");
    eprintln!(
        "{} batch cases ({kind} mutations) agree between Rust and the EVM: {verdicts:?}; \
         proving {:.1} s, keys and verifiers {:.1} s, checking {:.1} s; wrote {}",
        cases.len(),
        proving.as_secs_f64(),
        (deployed - proving).as_secs_f64(),
        (started.elapsed() - deployed).as_secs_f64(),
        path.display()
    );
}

/// A key directory made by `keygen`, its host key, and a batch of 2 of
/// that host with the clients' results.
fn keyed_batch(dir: &Path) -> (PathBuf, Batch) {
    let keys = dir.join("keys");
    let made = common::cli(&["keygen", "--dir", keys.to_str().expect("path")]);
    assert!(made.status.success(), "{made:?}");
    let set = KeySet::load(&keys).expect("load keys");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    (keys, make_batch(2, 2, &set.host_key, &mut rng))
}

fn json_line(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{output:?}"))
}

#[test]
fn cli_verify_checks_a_checkpoint_in_a_batch_with_the_exit_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (keys, batch) = keyed_batch(dir.path());
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let binary = file("batch.bin", &batch.proof.to_bytes());
    let text = file(
        "batch.hex",
        format!("{}\n", batch.proof.to_hex()).as_bytes(),
    );
    let (result, tokens) = &batch.clients[1];
    let result_path = file("result.json", result.to_string().as_bytes());
    let run = |batch: &Path, tokens: u64| {
        common::cli(&[
            "verify",
            "--keys-dir",
            keys.to_str().expect("path"),
            "--result",
            result_path.to_str().expect("path"),
            "--batch",
            batch.to_str().expect("path"),
            "--tokens",
            &tokens.to_string(),
        ])
    };
    for form in [&binary, &text] {
        let ok = run(form, *tokens);
        assert_eq!(ok.status.code(), Some(0), "{ok:?}");
        let line = json_line(&ok);
        assert_eq!(
            (line["valid"].clone(), line["entry"].clone()),
            (json!(true), json!(1)),
            "{line}"
        );
        assert_eq!(line["batch_size"], 2);
        assert_eq!(line["vk_id"], batch.proof.vk_id.to_string());
    }
    // Another checkpoint of the job: exit 1 with the reason.
    let other = run(&binary, tokens + 1);
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert_eq!(json_line(&other)["reason_code"], "not_in_batch");
    // A forged batch (an entry moved): exit 1, invalid.
    let mut forged = batch.proof.clone();
    forged.public.entries.swap(0, 1);
    let forged = run(&file("forged.bin", &forged.to_bytes()), *tokens);
    assert_eq!(forged.status.code(), Some(1), "{forged:?}");
    assert_eq!(json_line(&forged)["reason_code"], "invalid_proof");
    // Malformed input: exit 2 with the code.
    let mut truncated = batch.proof.to_bytes();
    truncated.pop();
    let bad = run(&file("truncated.bin", &truncated), *tokens);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert_eq!(json_line(&bad)["code"], "malformed_proof", "{bad:?}");
    let mut zero = batch.proof.to_bytes();
    zero[41..43].fill(0);
    let bad = run(&file("zero.bin", &zero), *tokens);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert_eq!(json_line(&bad)["code"], "unsupported_batch_size", "{bad:?}");
    // --tokens without --batch is a usage error.
    let usage = common::cli(&[
        "verify",
        "--keys-dir",
        keys.to_str().expect("path"),
        "--result",
        result_path.to_str().expect("path"),
        "--proof",
        binary.to_str().expect("path"),
        "--tokens",
        "1",
    ]);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

#[test]
fn a_ceremony_key_directory_refuses_batch_sizes_its_srs_cannot_give() {
    use halo2_axiom::halo2curves::bn256::Bn256;
    use halo2_axiom::poly::kzg::commitment::ParamsKZG;
    let dir = tempfile::tempdir().expect("temp dir");
    let params = ParamsKZG::<Bn256>::setup(7, ChaCha20Rng::seed_from_u64(4242));
    let mut bytes = Vec::new();
    params
        .write_custom(&mut bytes, halo2_axiom::SerdeFormat::RawBytes)
        .expect("params");
    let srs = dir.path().join("ceremony.params");
    std::fs::write(&srs, &bytes).expect("write");
    let pin = fabstir_zk::Digest32::sha256(&bytes).to_string();
    let keys = dir.path().join("keys");
    let made = common::cli(&[
        "keygen",
        "--dir",
        keys.to_str().expect("path"),
        "--srs",
        srs.to_str().expect("path"),
        "--srs-sha256",
        &pin,
    ]);
    assert!(made.status.success(), "{made:?}");
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let batch = make_batch(2, 1, &host(3), &mut rng);
    let path = dir.path().join("batch.bin");
    std::fs::write(&path, batch.proof.to_bytes()).expect("write");
    let result = dir.path().join("result.json");
    std::fs::write(&result, batch.clients[0].0.to_string()).expect("write");
    let refused = common::cli(&[
        "verify",
        "--keys-dir",
        keys.to_str().expect("path"),
        "--result",
        result.to_str().expect("path"),
        "--batch",
        path.to_str().expect("path"),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let line = json_line(&refused);
    assert_eq!(line["code"], "unsupported_batch_size", "{line}");
    assert!(
        line["error"].as_str().unwrap_or("").contains("2^7"),
        "{line}"
    );
    // Its batch key of 1 entry exports; that of 2 does not.
    let export = |n: &str, out: &str| {
        common::cli(&[
            "keys",
            "export-vk",
            "--keys-dir",
            keys.to_str().expect("path"),
            "--batch-size",
            n,
            "--out",
            dir.path().join(out).to_str().expect("path"),
        ])
    };
    let one = export("1", "one.json");
    assert!(one.status.success(), "{one:?}");
    assert_eq!(json_line(&one)["entries"], 1);
    assert_eq!(export("2", "two.json").status.code(), Some(2));
    // Nor does `evm verifier` write a verifier of 2 without the ceremony
    // file; it writes nothing at all.
    let out = dir.path().join("verifiers");
    let refused = common::cli(&[
        "evm",
        "verifier",
        "--keys-dir",
        keys.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
        "--batch-sizes",
        "1,2",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert_eq!(json_line(&refused)["code"], "batch_srs");
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn post_verify_answers_for_one_entry_of_a_batch() {
    let dir = common::DataDir::new();
    let node = common::Node::start(dir.path(), &["--mock-proofs"]);
    let set = KeySet::load(&dir.path().join("keys")).expect("the node's keys");
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let batch = make_batch(2, 2, &set.host_key, &mut rng);
    let hex = batch.proof.to_hex();
    let (result, tokens) = &batch.clients[0];
    let ask = |body: Value| node.post("/v1/verify", &body);
    let (status, body) = ask(json!({ "result": result, "batch": hex, "tokens": tokens }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["valid"].clone(), body["entry"].clone()),
        (json!(true), json!(0)),
        "{body}"
    );
    // Each failure is a 200 with its reason code.
    let (_, body) = ask(json!({ "result": result, "batch": hex, "tokens": tokens + 1 }));
    assert_eq!(
        (body["valid"].clone(), body["reason_code"].clone()),
        (json!(false), json!("not_in_batch")),
        "{body}"
    );
    let other_host = HostKey::from_secret(Fr::from(99)).host_id().to_string();
    let (_, body) =
        ask(json!({ "result": result, "batch": hex, "tokens": tokens, "host_id": other_host }));
    assert_eq!(body["reason_code"], "wrong_host", "{body}");
    let mut changed = result.clone();
    changed["response"] = json!("another response");
    let (_, body) = ask(json!({ "result": changed, "batch": hex, "tokens": tokens }));
    assert_eq!(body["reason_code"], "commitment_mismatch", "{body}");
    // Unreadable batches and mixed forms are 400s.
    let (status, body) = ask(json!({ "result": result, "batch": "0x00", "tokens": tokens }));
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("malformed_proof")),
        "{body}"
    );
    let (status, _) = ask(json!({ "result": result, "batch": hex, "proof": {"format": 1} }));
    assert_eq!(status, 400);
    let (status, _) = ask(json!({ "result": result, "proof": {"format": 1}, "tokens": 1 }));
    assert_eq!(status, 400);
}

/// `evm verifier --batch-sizes` writes batch verifiers, and the interface
/// they import, that compile and deploy as written, carry their key's id and
/// verify batch proofs (a flipped proof byte fails); existing files are kept
/// without `--force`.
#[test]
fn evm_verifier_writes_batch_verifiers_that_verify_batch_proofs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("verifiers");
    let out_arg = out.to_str().expect("path");
    let args = ["evm", "verifier", "--out", out_arg, "--batch-sizes", "1,2"];
    let written = common::cli(&args);
    assert!(written.status.success(), "{written:?}");
    let line = json_line(&written);
    for n in [1usize, 2] {
        let vk = batch_pk(n).verifying_key();
        let entry = &line["batch_verifiers"][n.to_string()];
        assert_eq!(entry["vk_id"], vk.id().to_string(), "{line}");
        assert_eq!(
            entry["path"],
            out.join(format!("FabstirBatchVerifier{n}.sol"))
                .display()
                .to_string(),
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("IFabstirBatchVerifier.sol")).expect("the interface"),
        common::read_repo_file("contracts/src/IFabstirBatchVerifier.sol"),
        "the interface written is the repository's"
    );
    assert!(
        out.join("FabstirVerifier.sol").is_file(),
        "the single verifier too"
    );

    let anvil = Anvil::start();
    let compiled = compile(
        &out.join("FabstirBatchVerifier2.sol"),
        "FabstirBatchVerifier",
    );
    let address = anvil.deploy(&compiled.bytecode);
    let id = anvil
        .call(&address, &VK_IDCall {}.abi_encode())
        .expect("VK_ID()");
    let verifier = EvmVerifier {
        size: 2,
        address,
        vk_id: id[..32].try_into().expect("bytes32"),
    };
    assert_eq!(verifier.vk_id, batch_pk(2).verifying_key().id().0);
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let batch = make_batch(2, 1, &host(5), &mut rng);
    let instances = batch.proof.public.to_field_elements();
    assert!(evm_verify(
        &anvil,
        &verifier,
        &instances,
        &batch.proof.proof
    ));
    let mut flipped = batch.proof.proof.clone();
    flipped[100] ^= 1;
    assert!(!evm_verify(&anvil, &verifier, &instances, &flipped));

    let again = common::cli(&args);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert_eq!(json_line(&again)["code"], "exists");
}

/// Keys made from a ceremony SRS: their directory stores it cut to 2^7
/// rows, which gives the batch key of 1 entry only. Given the ceremony file
/// (`--batch-srs`, checked against keys.json), `keys export-vk`, `verify
/// --batch` and `serve`'s `POST /v1/verify` derive the larger batch keys
/// from it: the keys the host proves with. Another file is refused.
#[test]
fn a_ceremony_file_gives_the_batch_keys_its_key_directory_cannot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ceremony = |name: &str, k: u32| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).expect("dir");
        let (path, pin) = common::ceremony_srs_at(&sub, k);
        let pin = fabstir_zk::Digest32::parse("pin", &pin).expect("pin");
        (PathBuf::from(path), pin)
    };
    // 2^8 rows: what a batch of 2 needs. The other file (the same secret at
    // 2^9 rows) is not the one keys.json pins.
    let (srs, pin) = ceremony("ceremony", 8);
    let (other, _) = ceremony("other", 9);
    let keys = dir.path().join("keys");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let made = common::cli(&[
        "keygen",
        "--keys-dir",
        &path(&keys),
        "--srs",
        &path(&srs),
        "--srs-sha256",
        &pin.to_string(),
    ]);
    assert!(made.status.success(), "{made:?}");
    // The host's batch key of 2, from the ceremony's parameters.
    let ceremony_srs = Srs::load_ceremony_at(&srs, &pin, 8).expect("the ceremony at 2^8");
    let pk = BatchProvingKey::build(Arc::new(ceremony_srs), BatchSize::new(2).expect("size"))
        .expect("keygen");
    let host = host(3);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let batch = make_batch_under(&pk, 1, &host, &mut rng);
    let (result, tokens) = &batch.clients[0];
    let result_file = dir.path().join("result.json");
    std::fs::write(&result_file, result.to_string()).expect("write");
    let batch_file = dir.path().join("batch.bin");
    std::fs::write(&batch_file, batch.proof.to_bytes()).expect("write");

    let export = |out: &str, file: Option<&Path>| {
        let out = path(&dir.path().join(out));
        let mut args = vec!["keys", "export-vk", "--keys-dir"];
        let keys = path(&keys);
        args.extend([keys.as_str(), "--batch-size", "2", "--out", out.as_str()]);
        let file = file.map(path);
        if let Some(file) = &file {
            args.extend(["--batch-srs", file.as_str()]);
        }
        common::cli(&args)
    };
    let exported = export("two.json", Some(&srs));
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        json_line(&exported)["vk_id"],
        pk.verifying_key().id().to_string()
    );
    let without = export("none.json", None);
    assert_eq!(without.status.code(), Some(2), "{without:?}");
    assert_eq!(json_line(&without)["code"], "unsupported_batch_size");
    let wrong = export("wrong.json", Some(&other));
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    assert_eq!(json_line(&wrong)["code"], "batch_srs", "{wrong:?}");

    let verify = |file: Option<&Path>| {
        let (keys, result, batch) = (path(&keys), path(&result_file), path(&batch_file));
        let tokens = tokens.to_string();
        let host = host.host_id().to_string();
        let mut args = vec![
            "verify",
            "--keys-dir",
            &keys,
            "--result",
            &result,
            "--batch",
            &batch,
            "--tokens",
            &tokens,
            "--host-id",
            &host,
        ];
        let file = file.map(path);
        if let Some(file) = &file {
            args.extend(["--batch-srs", file.as_str()]);
        }
        common::cli(&args)
    };
    let valid = verify(Some(&srs));
    assert_eq!(valid.status.code(), Some(0), "{valid:?}");
    assert_eq!(json_line(&valid)["valid"], true);
    let refused = verify(None);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert_eq!(json_line(&refused)["code"], "unsupported_batch_size");

    // A node over these keys, given the file, answers for the entry.
    let node = common::Node::start(dir.path(), &["--mock-proofs", "--batch-srs", &path(&srs)]);
    let (status, body) = node.post(
        "/v1/verify",
        &json!({ "result": result, "batch": batch.proof.to_hex(), "tokens": tokens,
                 "host_id": host.host_id().to_string() }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["valid"].clone(), body["entry"].clone()),
        (json!(true), json!(0)),
        "{body}"
    );
}
