//! The marketplace contract (contracts/src/FabstirMarketplace.sol) with real
//! proofs:
//! - the forge test's proofs (contracts/test/vectors/marketplace.json) are
//!   what the generator writes around them, for the address forge deploys
//!   the marketplace at, and still verify under the development key;
//! - end to end on anvil: a host registers, a client opens a job, proofs the
//!   node made for that job are paid for, a replayed, over-claiming or
//!   foreign proof is refused with the contract's own error, and completion
//!   refunds the rest of the deposit.
//!
//! Regenerate the forge vectors (after a key change) with
//! `FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-node --test it -- marketplace::`.
//!
//! Needs Node.js and `npm ci --prefix contracts` (the README's test command).

use crate::common;

use std::sync::{Arc, OnceLock};

use alloy_primitives::{address, keccak256, Address as AlloyAddress, U256};
use alloy_sol_types::SolCall;
use common::evm::{compile, Address, Anvil, CallError, Receipt};
use common::{read_repo_file, repo_root};
use fabstir_node::chain::contract::IFabstirMarketplace::{self, IFabstirMarketplaceErrors};
use fabstir_node::chain::contract::{decode_revert, Revert};
use fabstir_zk::evm::{calldata, halo2_verdict, Plan};
use fabstir_zk::{Fr, HostKey, InferenceResult, ProofEnvelope, ProvingKey, Srs};
use serde_json::{json, Value};

const VECTORS_FILE: &str = "contracts/test/vectors/marketplace.json";
const REGENERATE: &str =
    "FABSTIR_REGENERATE_VECTORS=1 cargo test -p fabstir-node --test it -- marketplace::";

/// forge deploys a test contract at this address, with nonce 1.
const FORGE_TEST_CONTRACT: AlloyAddress = address!("7FA9385bE102ac3EAc297483Dd6233D62b3e1496");
/// forge's default chain id.
const FORGE_CHAIN_ID: u64 = 31337;

fn pk() -> &'static ProvingKey {
    static PK: OnceLock<ProvingKey> = OnceLock::new();
    PK.get_or_init(|| ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen"))
}

/// Development host `n` (the test hosts' convention).
fn host(n: u64) -> HostKey {
    HostKey::from_secret(Fr::from(0x5eed_0000 + n))
}

/// Development host `n`'s id as a contract word.
fn host_word(n: u64) -> [u8; 32] {
    calldata::instance_words(&[host(n).host_id().0])[0]
}

/// The marketplace's address in the forge test: the test contract deploys
/// the verifier (nonce 1), then the marketplace (nonce 2).
fn forge_marketplace() -> AlloyAddress {
    forge_created(2)
}

/// The second marketplace a forge test deploys (nonce 3, after `setUp`).
fn forge_other_marketplace() -> AlloyAddress {
    forge_created(3)
}

/// The address of the contract the forge test contract creates with `nonce`.
fn forge_created(nonce: u8) -> AlloyAddress {
    // CREATE: keccak256(rlp([sender, nonce]))[12..], a one-byte nonce.
    let mut rlp = vec![0xd6, 0x94];
    rlp.extend_from_slice(FORGE_TEST_CONTRACT.as_slice());
    rlp.push(nonce);
    AlloyAddress::from_slice(&keccak256(&rlp)[12..])
}

/// One proof the forge test uses: `host` proved `tokens` cumulative tokens
/// for job `job`.
struct Vector {
    name: &'static str,
    job: u64,
    host: u64,
    tokens: u64,
}

/// The forge test's proofs. Job 2 is served by host 2: its proof by host 1
/// is another host's work. Host 3's key is the one host 1's wallet rotates
/// to.
const VECTORS: [Vector; 4] = [
    Vector {
        name: "JOB1_HOST1_100",
        job: 1,
        host: 1,
        tokens: 100,
    },
    Vector {
        name: "JOB1_HOST1_250",
        job: 1,
        host: 1,
        tokens: 250,
    },
    Vector {
        name: "JOB2_HOST1_100",
        job: 2,
        host: 1,
        tokens: 100,
    },
    Vector {
        name: "JOB1_HOST3_250",
        job: 1,
        host: 3,
        tokens: 250,
    },
];

/// One registration proof the forge test uses: development host `host`'s
/// key registered for the wallet of secp256k1 key `wallet_key`.
struct RegistrationVector {
    name: &'static str,
    host: u64,
    wallet_key: u64,
    /// For the second marketplace a test deploys, not `setUp`'s.
    other_marketplace: bool,
}

/// forge's host 1 and host 2 wallets (`vm.addr(0xA11CE)`, `vm.addr(0xB0B)`).
const HOST1_WALLET_KEY: u64 = 0xA11CE;
const HOST2_WALLET_KEY: u64 = 0xB0B;

/// The forge test's registrations: hosts 1 and 2 for their wallets, and
/// host 3's key for host 1's wallet (the rotation).
const REGISTRATIONS: [RegistrationVector; 4] = [
    RegistrationVector {
        name: "HOST1",
        host: 1,
        wallet_key: HOST1_WALLET_KEY,
        other_marketplace: false,
    },
    RegistrationVector {
        name: "HOST2",
        host: 2,
        wallet_key: HOST2_WALLET_KEY,
        other_marketplace: false,
    },
    RegistrationVector {
        name: "HOST3_FOR_HOST1_WALLET",
        host: 3,
        wallet_key: HOST1_WALLET_KEY,
        other_marketplace: false,
    },
    RegistrationVector {
        name: "HOST1_ON_OTHER_MARKETPLACE",
        host: 1,
        wallet_key: HOST1_WALLET_KEY,
        other_marketplace: true,
    },
];

/// The marketplace registration vector `r` is for.
fn registration_marketplace(r: &RegistrationVector) -> AlloyAddress {
    if r.other_marketplace {
        forge_other_marketplace()
    } else {
        forge_marketplace()
    }
}

/// The address of secp256k1 private key `key`.
fn wallet_of(key: u64) -> AlloyAddress {
    let signer = alloy::signers::local::PrivateKeySigner::from_bytes(
        &U256::from(key).to_be_bytes::<32>().into(),
    )
    .expect("key");
    signer.address()
}

/// The registration statement of `r` for the forge test's marketplace.
fn registration_statement(r: &RegistrationVector) -> fabstir_zk::Statement {
    fabstir_zk::Statement::registration(
        FORGE_CHAIN_ID,
        registration_marketplace(r),
        wallet_of(r.wallet_key),
        host(r.host).host_id(),
    )
}

/// The result a node would prove for `job` at `tokens` cumulative tokens.
fn result(chain_id: u64, marketplace: &[u8; 20], job: u64, tokens: u64) -> InferenceResult {
    InferenceResult::from_json(
        json!({
            "job_id": job.to_string(),
            "chain_id": chain_id,
            "marketplace": format!("0x{}", hex::encode(marketplace)),
            "model": "llama-3",
            "prompt": format!("prompt of job {job}"),
            "response": format!("response of job {job} up to {tokens} tokens"),
            "tokens_used": tokens,
        })
        .to_string()
        .as_bytes(),
    )
    .expect("result")
}

/// The public inputs (contract words) of `v` in the forge test.
fn vector_words(v: &Vector) -> Vec<[u8; 32]> {
    let statement = result(FORGE_CHAIN_ID, &forge_marketplace().0 .0, v.job, v.tokens)
        .statement(host(v.host).host_id());
    calldata::instance_words(&statement.instance().to_field_elements())
}

/// `marketplace.json` around `proofs` (one per [`VECTORS`] entry, then one
/// per [`REGISTRATIONS`] entry).
fn vectors_json(proofs: &[Vec<u8>]) -> Value {
    let (proofs, registration_proofs) = proofs.split_at(VECTORS.len().min(proofs.len()));
    let word = |w: [u8; 32]| format!("0x{}", hex::encode(w));
    let entries = VECTORS.iter().zip(proofs).map(|(v, proof)| {
        let commitment = vector_words(v)[fabstir_zk::circuit::layout::instance::COMMITMENT];
        let entry = json!({
            "job": v.job,
            "host": v.host,
            "tokens": v.tokens,
            "commitment": word(commitment),
            "proof": format!("0x{}", hex::encode(proof)),
        });
        (v.name.to_string(), entry)
    });
    let registrations = REGISTRATIONS
        .iter()
        .zip(registration_proofs)
        .map(|(r, proof)| {
            let words =
                calldata::instance_words(&registration_statement(r).instance().to_field_elements());
            let entry = json!({
                "host": r.host,
                "wallet": wallet_of(r.wallet_key).to_checksum(None),
                "commitment": word(words[fabstir_zk::circuit::layout::instance::COMMITMENT]),
                "proof": format!("0x{}", hex::encode(proof)),
            });
            (r.name.to_string(), entry)
        });
    json!({
        "about": "Proofs for test/FabstirMarketplace.t.sol, made with the development proving key by development hosts 1 and 2 for the marketplace forge deploys at `marketplace` on chain `chain_id`. Generated by crates/fabstir-node/tests/it/marketplace.rs; do not edit.",
        "regenerate": REGENERATE,
        "marketplace": forge_marketplace().to_checksum(None),
        "other_marketplace": forge_other_marketplace().to_checksum(None),
        "chain_id": FORGE_CHAIN_ID,
        "host_ids": {
            "host1": word(host_word(1)),
            "host2": word(host_word(2)),
            "host3": word(host_word(3)),
        },
        "proofs": entries.collect::<serde_json::Map<_, _>>(),
        "registrations": registrations.collect::<serde_json::Map<_, _>>(),
    })
}

/// The proofs of a file written from [`vectors_json`], in [`VECTORS`] then
/// [`REGISTRATIONS`] order.
fn parse_proofs(file: &Value) -> Vec<Vec<u8>> {
    VECTORS
        .iter()
        .map(|v| &file["proofs"][v.name]["proof"])
        .chain(
            REGISTRATIONS
                .iter()
                .map(|r| &file["registrations"][r.name]["proof"]),
        )
        .filter_map(|p| p.as_str())
        .filter_map(|h| hex::decode(h.strip_prefix("0x")?).ok())
        .collect()
}

/// The public inputs (contract words) of proof `i` of the file: a vector's,
/// then a registration's.
fn words_of_proof(i: usize) -> Vec<[u8; 32]> {
    match VECTORS.get(i) {
        Some(v) => vector_words(v),
        None => calldata::instance_words(
            &registration_statement(&REGISTRATIONS[i - VECTORS.len()])
                .instance()
                .to_field_elements(),
        ),
    }
}

#[test]
fn forge_vectors_are_current_and_verify() {
    let path = repo_root().join(VECTORS_FILE);
    if std::env::var_os("FABSTIR_REGENERATE_VECTORS").is_some() {
        let registrations = REGISTRATIONS.iter().map(|r| {
            ProofEnvelope::create_registration(
                pk(),
                FORGE_CHAIN_ID,
                registration_marketplace(r),
                wallet_of(r.wallet_key),
                &host(r.host),
                rand::rngs::OsRng,
            )
            .expect("prove registration")
            .proof
        });
        let proofs: Vec<Vec<u8>> = VECTORS
            .iter()
            .map(|v| {
                let statement = result(FORGE_CHAIN_ID, &forge_marketplace().0 .0, v.job, v.tokens)
                    .statement(host(v.host).host_id());
                ProofEnvelope::create(pk(), &statement, &host(v.host), rand::rngs::OsRng)
                    .expect("prove")
                    .proof
            })
            .chain(registrations)
            .collect();
        let text = serde_json::to_string_pretty(&vectors_json(&proofs)).expect("json") + "\n";
        std::fs::write(&path, text).expect("write vectors");
    }
    let file: Value = serde_json::from_str(&read_repo_file(VECTORS_FILE))
        .unwrap_or_else(|e| panic!("{VECTORS_FILE}: {e}; regenerate with {REGENERATE}"));
    let proofs = parse_proofs(&file);
    assert_eq!(
        proofs.len(),
        VECTORS.len() + REGISTRATIONS.len(),
        "{VECTORS_FILE}: regenerate with {REGENERATE}"
    );
    assert_eq!(
        file,
        vectors_json(&proofs),
        "{VECTORS_FILE} drifted from its generator: regenerate with {REGENERATE}"
    );
    let plan = Plan::new(pk().verifying_key()).expect("plan");
    let names = VECTORS
        .iter()
        .map(|v| v.name)
        .chain(REGISTRATIONS.iter().map(|r| r.name));
    for (i, (name, proof)) in names.zip(&proofs).enumerate() {
        assert!(
            halo2_verdict(pk().verifying_key(), &plan, &words_of_proof(i), proof),
            "{name}: the checked-in proof no longer verifies under the development key; regenerate with {REGENERATE}",
        );
    }
    // A proof is bound to its statement: the first proof does not verify for
    // the second vector's public inputs.
    assert!(!halo2_verdict(
        pk().verifying_key(),
        &plan,
        &vector_words(&VECTORS[1]),
        &proofs[0]
    ));
}

/// The verifier and the marketplace on a fresh anvil, with a client and a
/// host account.
struct Market {
    anvil: Anvil,
    address: Address,
    client: Address,
    host: Address,
}

impl Market {
    fn deploy() -> Self {
        Self::deploy_with(&[])
    }

    /// The marketplace with a batch verifier generated for `pk`'s key.
    fn deploy_with_batch_verifier(pk: &fabstir_zk::BatchProvingKey) -> Self {
        let plan = Plan::for_batch(pk.verifying_key()).expect("batch plan");
        let verifier =
            fabstir_zk::evm::solidity::generate_with(&plan, fabstir_zk::evm::solidity::Mode::Loops);
        // The generated source imports its interface from beside it.
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            repo_root().join("contracts/src/IFabstirBatchVerifier.sol"),
            dir.path().join("IFabstirBatchVerifier.sol"),
        )
        .expect("copy the interface");
        let path = dir.path().join("FabstirBatchVerifier.sol");
        std::fs::write(&path, &verifier.source).expect("write the verifier");
        let compiled = compile(&path, "FabstirBatchVerifier");
        Self::deploy_with(&[(pk.size().get(), &compiled)])
    }

    fn deploy_with(batch_verifiers: &[(usize, &common::evm::Compiled)]) -> Self {
        let anvil = Anvil::start();
        let verifier = compile(
            &repo_root().join("contracts/src/FabstirVerifier.sol"),
            "FabstirVerifier",
        );
        let market = compile(
            &repo_root().join("contracts/src/FabstirMarketplace.sol"),
            "FabstirMarketplace",
        );
        let address = anvil
            .deploy_marketplace_with_batches(&verifier, batch_verifiers, &market)
            .marketplace;
        let accounts = anvil.accounts();
        Self {
            client: accounts[0],
            host: accounts[1],
            anvil,
            address,
        }
    }

    /// Sends `data` from `from` with `value` wei; the receipt once mined.
    fn send(&self, from: &Address, data: Vec<u8>, value: U256) -> Receipt {
        self.anvil
            .send_from(*from, self.address, &data, value, Some(0x1000000))
    }

    /// Sends and expects success; the gas used.
    fn ok(&self, from: &Address, data: Vec<u8>, value: U256, what: &str) -> u64 {
        let receipt = self.send(from, data.clone(), value);
        if !receipt.status() {
            panic!("{what} reverted: {:?}", self.revert(from, data, value));
        }
        receipt.gas_used
    }

    /// The contract error a call of `data` from `from` reverts with.
    fn revert(&self, from: &Address, data: Vec<u8>, value: U256) -> IFabstirMarketplaceErrors {
        let refused = self
            .anvil
            .call_with_value(*from, self.address, &data, value);
        let Err(CallError::Reverted(data)) = refused else {
            panic!("the call should revert with data: {refused:?}");
        };
        match decode_revert(&data) {
            Revert::Marketplace(error) => error,
            other => panic!("not a marketplace error: {other}"),
        }
    }

    fn view(&self, data: Vec<u8>) -> Vec<u8> {
        self.anvil
            .call(&self.address, &data)
            .unwrap_or_else(|e| panic!("view call reverted: {e:?}"))
    }

    fn job(&self, job: u64) -> IFabstirMarketplace::Job {
        let out = self.view(
            IFabstirMarketplace::getJobCall {
                jobId: U256::from(job),
            }
            .abi_encode(),
        );
        IFabstirMarketplace::getJobCall::abi_decode_returns(&out).expect("getJob")
    }

    fn earnings(&self, account: &Address) -> U256 {
        let out = self.view(IFabstirMarketplace::earningsCall { account: *account }.abi_encode());
        IFabstirMarketplace::earningsCall::abi_decode_returns(&out).expect("earnings")
    }
}

/// What a submission takes of an envelope: (commitment, proof).
fn commitment_and_proof(envelope: ProofEnvelope) -> (U256, Vec<u8>) {
    let commitment = U256::from_be_bytes(
        calldata::instance_words(&envelope.instance.to_field_elements())
            [fabstir_zk::circuit::layout::instance::COMMITMENT],
    );
    (commitment, envelope.proof)
}

/// A proof by development host 1 for `job` on this market: (commitment, proof).
fn prove_for(m: &Market, chain_id: u64, job: u64, tokens: u64) -> (U256, Vec<u8>) {
    prove_by(m, chain_id, job, tokens, 1)
}

/// A proof by development host `n` for `job` on this market: (commitment, proof).
fn prove_by(m: &Market, chain_id: u64, job: u64, tokens: u64, n: u64) -> (U256, Vec<u8>) {
    let statement = result(chain_id, &m.address, job, tokens).statement(host(n).host_id());
    commitment_and_proof(
        ProofEnvelope::create(pk(), &statement, &host(n), rand::rngs::OsRng).expect("prove"),
    )
}

/// Development host `n`'s registration proof for `wallet` on this market
/// (chain `chain_id`): (commitment, proof).
fn registration_for(m: &Market, chain_id: u64, wallet: Address, n: u64) -> (U256, Vec<u8>) {
    let envelope = ProofEnvelope::create_registration(
        pk(),
        chain_id,
        m.address,
        wallet,
        &host(n),
        rand::rngs::OsRng,
    )
    .expect("prove registration");
    commitment_and_proof(envelope)
}

fn register(n: u64, (commitment, proof): &(U256, Vec<u8>)) -> Vec<u8> {
    IFabstirMarketplace::registerHostCall {
        hostId: U256::from_be_bytes(host_word(n)),
        commitment: *commitment,
        proof: proof.clone().into(),
    }
    .abi_encode()
}

fn rotate(n: u64, (commitment, proof): &(U256, Vec<u8>)) -> Vec<u8> {
    IFabstirMarketplace::rotateHostCall {
        newHostId: U256::from_be_bytes(host_word(n)),
        commitment: *commitment,
        proof: proof.clone().into(),
    }
    .abi_encode()
}

fn submit(job: u64, tokens: u64, (commitment, proof): &(U256, Vec<u8>)) -> Vec<u8> {
    IFabstirMarketplace::submitVerifiedProofCall {
        jobId: U256::from(job),
        cumulativeTokens: U256::from(tokens),
        commitment: *commitment,
        proof: proof.clone().into(),
    }
    .abi_encode()
}

#[test]
fn proofs_made_by_the_node_are_paid_for_once_on_anvil() {
    let m = Market::deploy();
    let vk_id = m.view(IFabstirMarketplace::verifierVkIdCall {}.abi_encode());
    assert_eq!(
        vk_id,
        pk().vk_id().0,
        "the marketplace's verifier checks another key"
    );

    let registration = registration_for(&m, 31337, m.host, 1);
    let gas = m.ok(
        &m.host,
        register(1, &registration),
        U256::ZERO,
        "registerHost",
    );
    eprintln!("registerHost with a proof: {gas} gas (whole transaction)");
    let price = U256::from(1_000_000_000u64);
    let deposit = price * U256::from(1_000u64);
    let open = IFabstirMarketplace::createSessionJobCall {
        host: m.host,
        modelId: [7u8; 32].into(),
        pricePerToken: price,
    }
    .abi_encode();
    m.ok(&m.client, open.clone(), deposit, "createSessionJob"); // job 1
    m.ok(&m.client, open, deposit, "createSessionJob"); // job 2

    let chain_id = 31337;
    let first = prove_for(&m, chain_id, 1, 100);
    let gas = m.ok(
        &m.host,
        submit(1, 100, &first),
        U256::ZERO,
        "first submission",
    );
    eprintln!("submitVerifiedProof: {gas} gas (whole transaction)");
    assert_eq!(m.job(1).tokensUsed, U256::from(100u64));
    assert_eq!(m.earnings(&m.host), price * U256::from(100u64));
    let recorded = m.view(
        IFabstirMarketplace::commitmentOfCall {
            jobId: U256::from(1u64),
            cumulativeTokens: U256::from(100u64),
        }
        .abi_encode(),
    );
    assert_eq!(
        U256::from_be_slice(&recorded),
        first.0,
        "recorded commitment"
    );

    // Replaying the same proof is refused: the count does not increase.
    match m.revert(&m.host, submit(1, 100, &first), U256::ZERO) {
        IFabstirMarketplaceErrors::TokensNotIncreasing(e) => {
            assert_eq!(e.recorded, U256::from(100u64));
        }
        other => panic!("replay: unexpected error {other:?}"),
    }
    // The job-1 proof claimed on job 2 (same host) is another job's work.
    assert!(matches!(
        m.revert(&m.host, submit(2, 100, &first), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidProof(_)
    ));
    // A proof made for another chain is refused.
    let other_chain = prove_for(&m, 1, 1, 200);
    assert!(matches!(
        m.revert(&m.host, submit(1, 200, &other_chain), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidProof(_)
    ));
    // Claiming a different token count than proved is refused.
    let second = prove_for(&m, chain_id, 1, 250);
    assert!(matches!(
        m.revert(&m.host, submit(1, 251, &second), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidProof(_)
    ));
    // Over the deposit (1000 tokens) is refused before verification.
    let too_many = prove_for(&m, chain_id, 1, 1001);
    assert!(matches!(
        m.revert(&m.host, submit(1, 1001, &too_many), U256::ZERO),
        IFabstirMarketplaceErrors::ExceedsDeposit(_)
    ));
    // Only the host submits.
    assert!(matches!(
        m.revert(&m.client, submit(1, 250, &second), U256::ZERO),
        IFabstirMarketplaceErrors::NotJobHost(_)
    ));
    m.ok(
        &m.host,
        submit(1, 250, &second),
        U256::ZERO,
        "second submission",
    );
    assert_eq!(m.earnings(&m.host), price * U256::from(250u64));

    // Completion refunds the rest once; nothing is paid after it.
    m.ok(
        &m.client,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(1u64),
        }
        .abi_encode(),
        U256::ZERO,
        "completeJob",
    );
    assert_eq!(m.earnings(&m.client), deposit - price * U256::from(250u64));
    let third = prove_for(&m, chain_id, 1, 300);
    assert!(matches!(
        m.revert(&m.host, submit(1, 300, &third), U256::ZERO),
        IFabstirMarketplaceErrors::JobAlreadyCompleted(_)
    ));
    let balance = |who: &Address| m.anvil.balance(*who);
    let before = balance(&m.host);
    let receipt = m.send(
        &m.host,
        IFabstirMarketplace::withdrawCall {}.abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.status(), "withdraw");
    let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(
        balance(&m.host) + fee - before,
        price * U256::from(250u64),
        "withdrawn earnings"
    );
    assert_eq!(m.earnings(&m.host), U256::ZERO);
}

/// Registration is bound to the sender: nobody can register a host id
/// without a proof made for their own wallet by the holder of its secret,
/// and a registered wallet rotates to a new key on a proof of the new key.
#[test]
fn squatting_fails_and_a_key_rotates_on_anvil() {
    let m = Market::deploy();
    let squatter = m.client;
    let chain_id = 31337;
    let hosts_proof = registration_for(&m, chain_id, m.host, 1);
    // The squatter front-runs with the host's own registration proof: it
    // names the host's wallet, not the squatter's.
    assert!(matches!(
        m.revert(&squatter, register(1, &hosts_proof), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidKeyProof(_)
    ));
    // A proof for the squatter's wallet needs host 1's secret: host 2's key
    // proves host 2's id only.
    let wrong_key = registration_for(&m, chain_id, squatter, 2);
    assert!(matches!(
        m.revert(&squatter, register(1, &wrong_key), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidKeyProof(_)
    ));
    // A proof made for another chain does not register here.
    let other_chain = registration_for(&m, 1, m.host, 1);
    assert!(matches!(
        m.revert(&m.host, register(1, &other_chain), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidKeyProof(_)
    ));
    // A checkpoint proof is not a registration proof.
    let checkpoint = prove_for(&m, chain_id, 1, 100);
    assert!(matches!(
        m.revert(&m.host, register(1, &checkpoint), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidKeyProof(_)
    ));
    m.ok(
        &m.host,
        register(1, &hosts_proof),
        U256::ZERO,
        "registerHost",
    );
    let id = |who: &Address| {
        U256::from_be_slice(&m.view(IFabstirMarketplace::hostIdOfCall { host: *who }.abi_encode()))
    };
    assert_eq!(id(&m.host), U256::from_be_bytes(host_word(1)));
    assert_eq!(id(&squatter), U256::ZERO, "the squatter has no id");

    // A job, one checkpoint under key 1.
    let price = U256::from(1_000_000_000u64);
    let open = IFabstirMarketplace::createSessionJobCall {
        host: m.host,
        modelId: [7u8; 32].into(),
        pricePerToken: price,
    }
    .abi_encode();
    m.ok(
        &m.client,
        open,
        price * U256::from(1_000u64),
        "createSessionJob",
    );
    m.ok(
        &m.host,
        submit(1, 100, &prove_for(&m, chain_id, 1, 100)),
        U256::ZERO,
        "checkpoint under key 1",
    );
    let old_key_proof = prove_for(&m, chain_id, 1, 250);

    // Rotation: only on a proof of the new key for this wallet.
    assert!(matches!(
        m.revert(
            &squatter,
            rotate(3, &registration_for(&m, chain_id, squatter, 3)),
            U256::ZERO
        ),
        IFabstirMarketplaceErrors::HostNotRegistered(_)
    ));
    assert!(matches!(
        m.revert(
            &m.host,
            rotate(3, &registration_for(&m, chain_id, m.host, 2)),
            U256::ZERO
        ),
        IFabstirMarketplaceErrors::InvalidKeyProof(_)
    ));
    let gas = m.ok(
        &m.host,
        rotate(3, &registration_for(&m, chain_id, m.host, 3)),
        U256::ZERO,
        "rotateHost",
    );
    eprintln!("rotateHost with a proof: {gas} gas (whole transaction)");
    assert_eq!(id(&m.host), U256::from_be_bytes(host_word(3)));
    // The retired id cannot be registered again, even with its own proof.
    assert!(matches!(
        m.revert(
            &squatter,
            register(1, &registration_for(&m, chain_id, squatter, 1)),
            U256::ZERO
        ),
        IFabstirMarketplaceErrors::HostIdTaken(_)
    ));

    // A proof made under the old key and not yet submitted is refused ...
    assert!(matches!(
        m.revert(&m.host, submit(1, 250, &old_key_proof), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidProof(_)
    ));
    // ... and the same checkpoint proved under the new key is paid, the
    // whole delta since the last credit.
    m.ok(
        &m.host,
        submit(1, 250, &prove_by(&m, chain_id, 1, 250, 3)),
        U256::ZERO,
        "checkpoint under key 3",
    );
    assert_eq!(m.earnings(&m.host), price * U256::from(250u64));
}

/// The batch size the anvil batch test proves (small: fast to prove).
const TEST_BATCH: usize = 4;

/// The batch proving key of [`TEST_BATCH`] entries under the development SRS.
fn batch_pk() -> &'static fabstir_zk::BatchProvingKey {
    static PK: OnceLock<fabstir_zk::BatchProvingKey> = OnceLock::new();
    PK.get_or_init(|| {
        let size = fabstir_zk::BatchSize::new(TEST_BATCH).expect("size");
        let srs = Arc::new(Srs::insecure_dev_at(size.k()).expect("srs"));
        fabstir_zk::BatchProvingKey::build(srs, size).expect("batch keygen")
    })
}

/// A batch of development host 1's checkpoints on market `m`: each
/// `(job, tokens)` proved, padded to [`TEST_BATCH`]; the call's entries and
/// the proof.
fn batch_for(
    m: &Market,
    chain_id: u64,
    checkpoints: &[(u64, u64)],
) -> (Vec<IFabstirMarketplace::BatchEntry>, Vec<u8>) {
    let statements: Vec<fabstir_zk::Statement> = checkpoints
        .iter()
        .map(|(job, tokens)| {
            result(chain_id, &m.address, *job, *tokens).statement(host(1).host_id())
        })
        .collect();
    let size = batch_pk().size();
    let batch = fabstir_zk::BatchStatement::from_statements(&statements)
        .expect("batch")
        .padded(size)
        .expect("padded");
    let proof = fabstir_zk::BatchProof::create(batch_pk(), &batch, &host(1), rand::rngs::OsRng)
        .expect("batch proof");
    let entries = fabstir_node::chain::contract::batch_entries(&batch.public());
    (entries, proof.proof)
}

fn submit_batch(entries: &[IFabstirMarketplace::BatchEntry], proof: &[u8]) -> Vec<u8> {
    IFabstirMarketplace::submitVerifiedBatchCall {
        entries: entries.to_vec(),
        proof: proof.to_vec().into(),
    }
    .abi_encode()
}

/// One proof pays many checkpoints: each entry is credited once, entries
/// that no longer fit are skipped without reverting the rest, padding never
/// pays, and a proof bound to other entries is refused.
#[test]
fn a_batch_pays_each_checkpoint_once_and_skips_what_no_longer_fits() {
    let m = Market::deploy_with_batch_verifier(batch_pk());
    let chain_id = 31337;
    let price = U256::from(1_000_000_000u64);
    let open = |host: Address, tokens: u64| {
        let call = IFabstirMarketplace::createSessionJobCall {
            host,
            modelId: [7u8; 32].into(),
            pricePerToken: price,
        }
        .abi_encode();
        m.ok(
            &m.client,
            call,
            price * U256::from(tokens),
            "createSessionJob",
        );
    };
    // A batch before registration: refused.
    let (entries, proof) = batch_for(&m, chain_id, &[(1, 100)]);
    assert!(matches!(
        m.revert(&m.host, submit_batch(&entries, &proof), U256::ZERO),
        IFabstirMarketplaceErrors::HostNotRegistered(_)
    ));
    m.ok(
        &m.host,
        register(1, &registration_for(&m, chain_id, m.host, 1)),
        U256::ZERO,
        "registerHost",
    );
    open(m.host, 1_000); // job 1
    open(m.host, 1_000); // job 2
    open(m.client, 1_000); // job 3: another host's

    // Two checkpoints of job 1 and one of job 2 in one proof, padded.
    let (entries, proof) = batch_for(&m, chain_id, &[(1, 100), (1, 250), (2, 40)]);
    assert_eq!(entries.len(), TEST_BATCH);
    assert_eq!(entries[3].jobId, U256::ZERO, "padding");
    let gas = m.ok(
        &m.host,
        submit_batch(&entries, &proof),
        U256::ZERO,
        "submitVerifiedBatch",
    );
    eprintln!(
        "submitVerifiedBatch of {TEST_BATCH} (3 checkpoints): {gas} gas, {} per entry",
        gas / TEST_BATCH as u64
    );
    assert_eq!(m.job(1).tokensUsed, U256::from(250u64));
    assert_eq!(m.job(2).tokensUsed, U256::from(40u64));
    assert_eq!(m.earnings(&m.host), price * U256::from(290u64));

    // The same batch again: every entry skipped, nothing paid, no revert.
    m.ok(
        &m.host,
        submit_batch(&entries, &proof),
        U256::ZERO,
        "replayed batch",
    );
    assert_eq!(m.earnings(&m.host), price * U256::from(290u64));

    // Entries moved, or their tokens swapped: the proof binds each entry.
    let mut moved = entries.clone();
    moved.swap(0, 2);
    assert!(matches!(
        m.revert(&m.host, submit_batch(&moved, &proof), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidBatchProof(_)
    ));
    let mut swapped = entries.clone();
    let tokens = swapped[0].tokens;
    swapped[0].tokens = swapped[1].tokens;
    swapped[1].tokens = tokens;
    assert!(matches!(
        m.revert(&m.host, submit_batch(&swapped, &proof), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidBatchProof(_)
    ));
    // A padding entry turned into a real job: not the proved entry.
    let mut unpadded = entries.clone();
    unpadded[3].jobId = U256::from(2u64);
    assert!(matches!(
        m.revert(&m.host, submit_batch(&unpadded, &proof), U256::ZERO),
        IFabstirMarketplaceErrors::InvalidBatchProof(_)
    ));
    // Another size than the verifiers': refused.
    assert!(matches!(
        m.revert(&m.host, submit_batch(&entries[..3], &proof), U256::ZERO),
        IFabstirMarketplaceErrors::UnsupportedBatchSize(_)
    ));
    // Another wallet with the host's batch: not its host id.
    assert!(matches!(
        m.revert(&m.client, submit_batch(&entries, &proof), U256::ZERO),
        IFabstirMarketplaceErrors::HostNotRegistered(_)
    ));

    // Job 2 completed meanwhile, job 3 another host's, job 1 over its
    // deposit: skipped; job 1's next checkpoint in the same batch is paid.
    m.ok(
        &m.client,
        IFabstirMarketplace::completeJobCall {
            jobId: U256::from(2u64),
        }
        .abi_encode(),
        U256::ZERO,
        "completeJob",
    );
    let (entries, proof) = batch_for(&m, chain_id, &[(2, 80), (3, 10), (1, 400), (1, 1_001)]);
    let receipt = m.send(&m.host, submit_batch(&entries, &proof), U256::ZERO);
    assert!(receipt.status(), "the batch with skipped entries reverted");
    let skipped: Vec<(u64, u8)> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| {
            log.log_decode::<IFabstirMarketplace::VerifiedCheckpointSkipped>()
                .ok()
        })
        .map(|log| {
            (
                log.inner.data.jobId.to::<u64>(),
                log.inner.data.reason as u8,
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![(2, 2), (3, 1), (1, 4)],
        "skipped entries: job 2 completed, job 3 not the sender's, job 1 over its deposit"
    );
    let paid: Vec<(u64, U256)> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| {
            log.log_decode::<IFabstirMarketplace::VerifiedProofSubmitted>()
                .ok()
        })
        .map(|log| (log.inner.data.jobId.to::<u64>(), log.inner.data.commitment))
        .collect();
    assert_eq!(
        paid,
        vec![(1, entries[2].commitment)],
        "job 1 at 400, with its commitment"
    );
    assert_eq!(m.job(1).tokensUsed, U256::from(400u64));
    assert_eq!(m.earnings(&m.host), price * U256::from(440u64));
}
