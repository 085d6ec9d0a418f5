//! [`Mode::Loops`] (the verifier for many public inputs) against halo2 and
//! forge:
//! - the unrolled verifier of the development key is still the checked-in
//!   contract, byte for byte; the loops' code does not grow with the number
//!   of public inputs;
//! - on the development key and on a test circuit with the batch circuit's
//!   shape (one instance column, hundreds of public inputs in seven
//!   field-major runs, queried at rotations that are multiples of the number
//!   of entries), the reference ([`native`]) agrees with halo2 on valid
//!   proofs, on every flipped proof byte and on every changed public input;
//! - the generated contracts, compiled and run by forge, accept valid proofs
//!   and refuse tampered ones, and the large one stays under EIP-170's limit;
//! - `measure_gas` (ignored: run it with `--ignored --nocapture`) deploys
//!   the verifiers on anvil and prints their `verify` gas.
//!
//! forge, anvil and cast come from `contracts/node_modules/.bin` (`npm ci
//! --prefix contracts`, the README's test set-up).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use halo2_axiom::circuit::{Layouter, SimpleFloorPlanner, Value};
use halo2_axiom::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_axiom::halo2curves::ff::{Field, PrimeField};
use halo2_axiom::plonk::{
    create_proof, keygen_pk, keygen_vk, verify_proof, Advice, Circuit, Column, ConstraintSystem,
    Error as PlonkError, Expression, Fixed, ProvingKey as Halo2ProvingKey,
    VerifyingKey as Halo2VerifyingKey,
};
use halo2_axiom::poly::commitment::ParamsProver as _;
use halo2_axiom::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_axiom::poly::kzg::multiopen::{ProverSHPLONK, VerifierSHPLONK};
use halo2_axiom::poly::kzg::strategy::SingleStrategy;
use halo2_axiom::poly::Rotation;
use halo2_axiom::transcript::{TranscriptReadBuffer, TranscriptWriterBuffer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snark_verifier::loader::native::NativeLoader;
use snark_verifier::system::halo2::transcript::evm::EvmTranscript;

use super::calldata;
use super::forge::{self, Vector};
use super::native;
use super::plan::Plan;
use super::solidity::{self, Mode};
use crate::keys::VkId;
use crate::{ProvingKey, Srs};

// ------------------------------------------------------------ the test circuit

/// The public inputs per entry, and their bounds (the version-2 statement's).
const FIELDS: usize = 7;
const FIELD_BITS: [u32; FIELDS] = [64, 160, 128, 128, 254, 254, 64];

/// A test circuit with the batch circuit's shape: `entries * 7` public
/// inputs, field-major (input `f` of entry `e` on row `f * entries + e`), in
/// one instance column queried at `rotations[k] * entries`; one fixed
/// column `q` as selector; advice `a` and `b`. Gates on the rows where `q`
/// is 1: `a = sum_k (k + 1) inst(rotations[k] * entries)` and `b = a^3`
/// (degree 4, as the commitment circuit's).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    entries: usize,
    rotations: Vec<i32>,
    k: u32,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            entries: 1,
            rotations: vec![0],
            k: 4,
        }
    }
}

impl Shape {
    fn new(entries: usize, rotations: &[i32], k: u32) -> Self {
        let shape = Self {
            entries,
            rotations: rotations.to_vec(),
            k,
        };
        // Room for the rows the gates read, and halo2's blinding rows.
        let max = rotations.iter().copied().max().unwrap_or(0).max(0) as usize;
        assert!(
            shape.instances() + max * entries + 8 < 1 << k,
            "k = {k} is too small for {shape:?}"
        );
        shape
    }

    fn instances(&self) -> usize {
        FIELDS * self.entries
    }

    fn bits(&self) -> Vec<u32> {
        FIELD_BITS
            .iter()
            .flat_map(|b| std::iter::repeat_n(*b, self.entries))
            .collect()
    }

    /// Rows whose gates are on: every rotation lands in `0..instances + max`.
    fn active(&self) -> std::ops::Range<usize> {
        let min = self.rotations.iter().copied().min().unwrap_or(0).min(0);
        (-min) as usize * self.entries..self.instances()
    }

    /// `a` on row `i` for the public inputs `inst`.
    fn a(&self, inst: &[Fr], row: usize) -> Fr {
        self.rotations
            .iter()
            .enumerate()
            .fold(Fr::ZERO, |acc, (k, r)| {
                let at = row as i64 + *r as i64 * self.entries as i64;
                let value = usize::try_from(at)
                    .ok()
                    .and_then(|at| inst.get(at))
                    .copied()
                    .unwrap_or(Fr::ZERO);
                acc + Fr::from(k as u64 + 1) * value
            })
    }
}

#[derive(Clone, Debug)]
struct WideConfig {
    q: Column<Fixed>,
    a: Column<Advice>,
    b: Column<Advice>,
}

struct WideCircuit {
    shape: Shape,
    /// Empty without a witness.
    instances: Vec<Fr>,
}

impl Circuit<Fr> for WideCircuit {
    type Config = WideConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = Shape;

    fn without_witnesses(&self) -> Self {
        Self {
            shape: self.shape.clone(),
            instances: Vec::new(),
        }
    }

    fn params(&self) -> Shape {
        self.shape.clone()
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> WideConfig {
        Self::configure_with_params(meta, Shape::default())
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, shape: Shape) -> WideConfig {
        let q = meta.fixed_column();
        let a = meta.advice_column();
        let b = meta.advice_column();
        let inst = meta.instance_column();
        meta.create_gate("wide", |meta| {
            let q = meta.query_fixed(q, Rotation::cur());
            let a = meta.query_advice(a, Rotation::cur());
            let b = meta.query_advice(b, Rotation::cur());
            let mut sum = Expression::Constant(Fr::ZERO);
            for (k, r) in shape.rotations.iter().enumerate() {
                let v = meta.query_instance(inst, Rotation(r * shape.entries as i32));
                sum = sum + v * Expression::Constant(Fr::from(k as u64 + 1));
            }
            vec![
                q.clone() * (a.clone() - sum),
                q * (a.clone() * a.clone() * a - b),
            ]
        });
        WideConfig { q, a, b }
    }

    fn synthesize(
        &self,
        config: WideConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), PlonkError> {
        layouter.assign_region(
            || "wide",
            |mut region| {
                for row in self.shape.active() {
                    region.assign_fixed(config.q, row, Fr::ONE);
                    if !self.instances.is_empty() {
                        let a = self.shape.a(&self.instances, row);
                        region.assign_advice(config.a, row, Value::known(a));
                        region.assign_advice(config.b, row, Value::known(a * a * a));
                    }
                }
                Ok(())
            },
        )
    }
}

/// The test circuit's keys and plan.
struct Wide {
    shape: Shape,
    params: ParamsKZG<Bn256>,
    vk: Halo2VerifyingKey<G1Affine>,
    pk: Halo2ProvingKey<G1Affine>,
    plan: Plan,
}

impl Wide {
    fn new(shape: Shape) -> Self {
        let params = ParamsKZG::<Bn256>::setup(shape.k, StdRng::seed_from_u64(u64::from(shape.k)));
        let empty = WideCircuit {
            shape: shape.clone(),
            instances: Vec::new(),
        };
        let vk = keygen_vk(&params, &empty).expect("keygen_vk");
        let pk = keygen_pk(&params, vk.clone(), &empty).expect("keygen_pk");
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(shape.instances() as u64).to_be_bytes());
        id[8..].copy_from_slice(&vk.transcript_repr().to_repr()[..24]);
        let plan = Plan::from_halo2(&vk, &params, VkId(id), 99, shape.bits()).expect("plan");
        Self {
            shape,
            params,
            vk,
            pk,
            plan,
        }
    }

    /// Random public inputs within their bounds, and a proof for them.
    fn prove(&self, seed: u64) -> Vector {
        let mut rng = StdRng::seed_from_u64(seed);
        let words: Vec<[u8; 32]> = self
            .plan
            .instance_bits
            .iter()
            .map(|bits| {
                let mut w = native::be(&Fr::random(&mut rng));
                if *bits < 254 {
                    let zero = (256 - *bits as usize) / 8;
                    w[..zero].fill(0);
                }
                w
            })
            .collect();
        let instances: Vec<Fr> = words
            .iter()
            .zip(&self.plan.instance_bits)
            .map(|(w, b)| native::instance(w, *b).expect("in bounds"))
            .collect();
        let circuit = WideCircuit {
            shape: self.shape.clone(),
            instances: instances.clone(),
        };
        let mut transcript =
            EvmTranscript::<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>::init(Vec::new());
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
            &self.params,
            &self.pk,
            &[circuit],
            &[&[&instances]],
            rand::rngs::OsRng,
            &mut transcript,
        )
        .expect("prove");
        let proof = transcript.finalize();
        assert_eq!(proof.len(), self.plan.layout().len, "proof length");
        Vector {
            instances: words,
            proof,
        }
    }

    /// halo2's verdict on contract inputs (as [`super::halo2_verdict`]).
    fn halo2(&self, words: &[[u8; 32]], proof: &[u8]) -> bool {
        if words.len() != self.plan.num_instances() || proof.len() != self.plan.layout().len {
            return false;
        }
        let Some(instances) = words
            .iter()
            .zip(&self.plan.instance_bits)
            .map(|(w, b)| native::instance(w, *b))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        catch_unwind(AssertUnwindSafe(|| {
            let mut transcript =
                EvmTranscript::<G1Affine, NativeLoader, &[u8], Vec<u8>>::init(proof);
            verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
                self.params.verifier_params(),
                &self.vk,
                SingleStrategy::new(&self.params),
                &[&[&instances]],
                &mut transcript,
            )
            .is_ok()
        }))
        .unwrap_or(false)
    }
}

/// 64 entries (448 public inputs) at the batch circuit's rotations.
fn wide64() -> &'static Wide {
    static WIDE: OnceLock<Wide> = OnceLock::new();
    WIDE.get_or_init(|| Wide::new(Shape::new(64, &[-2, -1, 0, 1, 2, 3], 10)))
}

/// 8 entries (56 public inputs): small enough to flip every proof byte.
fn wide8() -> &'static Wide {
    static WIDE: OnceLock<Wide> = OnceLock::new();
    WIDE.get_or_init(|| Wide::new(Shape::new(8, &[-2, -1, 0, 1, 2, 3], 7)))
}

// ------------------------------------------------------------ the development key

fn dev_pk() -> &'static ProvingKey {
    static PK: OnceLock<ProvingKey> = OnceLock::new();
    PK.get_or_init(|| ProvingKey::build(Arc::new(Srs::insecure_dev())).expect("keygen"))
}

fn dev_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| Plan::new(dev_pk().verifying_key()).expect("plan"))
}

fn dev_vectors() -> &'static [Vector] {
    static V: OnceLock<Vec<Vector>> = OnceLock::new();
    V.get_or_init(|| forge::vectors(dev_pk(), 2).expect("vectors"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ------------------------------------------------------------ generator

#[test]
fn unrolled_verifier_of_the_development_key_is_the_checked_in_one() {
    let plan = dev_plan();
    assert_eq!(Mode::for_plan(plan), Mode::Unrolled);
    let generated = solidity::generate(plan);
    assert_eq!(generated.mode, Mode::Unrolled);
    let checked_in = std::fs::read_to_string(repo_root().join("contracts/src/FabstirVerifier.sol"))
        .expect("contracts/src/FabstirVerifier.sol");
    assert!(
        generated.source == checked_in,
        "the unrolled verifier of the development key differs from contracts/src/FabstirVerifier.sol"
    );
}

/// The loops' source has the same lines for 112 and 448 public inputs (same
/// key otherwise): only figures (constants, addresses, lengths) differ.
#[test]
fn loops_code_does_not_grow_with_the_public_inputs() {
    let large_plan = &wide64().plan;
    let mut small_plan = large_plan.clone();
    small_plan.instance_bits = Shape::new(16, &wide64().shape.rotations, 10).bits();
    let small = solidity::generate(&small_plan);
    let large = solidity::generate(large_plan);
    assert_eq!(small.mode, Mode::Loops);
    assert_eq!(large.mode, Mode::Loops);
    assert!(large
        .source
        .contains("contract FabstirBatchVerifier is IFabstirBatchVerifier"));
    assert!(large
        .source
        .contains("function verify(uint256[] calldata instances"));
    // Each line's words, without numbers.
    let shape = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                l.split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| {
                        !w.is_empty()
                            && !w.starts_with("0x")
                            && !w.bytes().all(|b| b.is_ascii_digit())
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let (small_shape, large_shape) = (shape(&small.source), shape(&large.source));
    assert_eq!(small_shape.len(), large_shape.len(), "line counts");
    for (a, b) in small_shape.iter().zip(&large_shape) {
        assert_eq!(a, b);
    }
    // Forced on the development key: loops too, and no unrolled instance line.
    let dev = solidity::generate_with(dev_plan(), Mode::Loops).source;
    assert!(!dev.contains("INV_L") && !dev.contains("invertAll"));
    assert!(dev.contains("function inverses() -> good"));
}

// ------------------------------------------------------------ native vs halo2

/// halo2's verdict on public input words and proof bytes.
type Halo2Verdict<'a> = dyn Fn(&[[u8; 32]], &[u8]) -> bool + 'a;

/// The reference and halo2 on `vector`: accepted; every proof byte flipped
/// (bit `byte % 8`); each public input changed (xor 1, at its bound); one
/// public input more or fewer.
fn agree_on_mutations(
    plan: &Plan,
    halo2: &Halo2Verdict<'_>,
    v: &Vector,
    bytes: impl Iterator<Item = usize>,
) -> usize {
    assert!(
        native::verify(plan, &v.instances, &v.proof),
        "valid proof refused"
    );
    assert!(
        halo2(&v.instances, &v.proof),
        "halo2 refuses the valid proof"
    );
    let mut checked = 0;
    for at in bytes {
        let mut p = v.proof.clone();
        p[at] ^= 1 << (at % 8);
        let expect = halo2(&v.instances, &p);
        assert_eq!(native::verify(plan, &v.instances, &p), expect, "byte {at}");
        assert!(!expect, "byte {at} flipped and still valid");
        checked += 1;
    }
    for i in 0..v.instances.len() {
        let mut m = v.instances.clone();
        m[i][31] ^= 1;
        assert!(!native::verify(plan, &m, &v.proof), "public input {i}");
        assert!(!halo2(&m, &v.proof), "public input {i} (halo2)");
        let mut m = v.instances.clone();
        let bits = plan.instance_bits[i];
        if bits < 254 {
            m[i][31 - bits as usize / 8] |= 1 << (bits % 8);
            assert!(
                !native::verify(plan, &m, &v.proof),
                "public input {i} at bound"
            );
        }
        checked += 1;
    }
    let mut more = v.instances.clone();
    more.push([0; 32]);
    assert!(!native::verify(plan, &more, &v.proof));
    assert!(!native::verify(plan, &v.instances[1..], &v.proof));
    checked
}

/// Every byte of one proof of the development key (2,400 bytes).
#[test]
fn reference_agrees_with_halo2_on_every_byte_of_a_development_proof() {
    let plan = dev_plan();
    let v = &dev_vectors()[0];
    let halo2 =
        |w: &[[u8; 32]], p: &[u8]| super::halo2_verdict(dev_pk().verifying_key(), plan, w, p);
    let checked = agree_on_mutations(plan, &halo2, v, 0..v.proof.len());
    assert_eq!(checked, v.proof.len() + plan.num_instances());
}

/// Every byte of one proof of the 56-input test circuit, and a byte in every
/// word of one of the 448-input circuit.
#[test]
fn reference_agrees_with_halo2_on_the_wide_circuits() {
    for (wide, dense) in [(wide8(), true), (wide64(), false)] {
        let plan = &wide.plan;
        let v = wide.prove(1);
        let halo2 = |w: &[[u8; 32]], p: &[u8]| wide.halo2(w, p);
        let len = v.proof.len();
        let bytes: Vec<usize> = if dense {
            (0..len).collect()
        } else {
            let mut rng = StdRng::seed_from_u64(5);
            (0..len / 32)
                .map(|w| w * 32 + rng.gen_range(0..32))
                .collect()
        };
        let checked = agree_on_mutations(plan, &halo2, &v, bytes.into_iter());
        assert!(checked >= plan.num_instances() + len / 32);
        // Another proof's public inputs.
        let other = wide.prove(2);
        assert!(native::verify(plan, &other.instances, &other.proof));
        assert!(!native::verify(plan, &other.instances, &v.proof));
        assert!(!wide.halo2(&other.instances, &v.proof));
    }
}

// ------------------------------------------------------------ forge

fn tool(name: &str) -> PathBuf {
    repo_root().join("contracts/node_modules/.bin").join(name)
}

/// A Foundry project in a temporary directory, with the repository's
/// foundry.toml, solc wrapper and test utilities, the batch verifier's
/// interface, and `files` (path, contents).
fn foundry_project(files: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let contracts = repo_root().join("contracts");
    std::fs::copy(contracts.join("foundry.toml"), root.join("foundry.toml")).expect("foundry.toml");
    std::os::unix::fs::symlink(contracts.join("tools"), root.join("tools")).expect("tools");
    for d in ["src", "test/utils", "test/vectors"] {
        std::fs::create_dir_all(root.join(d)).expect("dirs");
    }
    for f in [
        "src/IFabstirBatchVerifier.sol",
        "test/utils/Test.sol",
        "test/utils/Vm.sol",
    ] {
        std::fs::copy(contracts.join(f), root.join(f)).expect(f);
    }
    for (path, text) in files {
        std::fs::write(root.join(path), text).expect("write");
    }
    dir
}

/// The files of a forge test of `plan`'s verifier in [`Mode::Loops`] on
/// `vectors`.
fn loops_files(plan: &Plan, vectors: &[Vector]) -> Vec<(String, String)> {
    let verifier = solidity::generate_with(plan, Mode::Loops);
    vec![
        ("src/FabstirBatchVerifier.sol".into(), verifier.source),
        (
            "test/FabstirBatchVerifier.t.sol".into(),
            forge::batch_test_source(plan, "vectors/Batch.json"),
        ),
        (
            "test/vectors/Batch.json".into(),
            forge::vectors_json(plan, vectors),
        ),
    ]
}

/// Runs `forge test` in the project; panics with forge's output on failure.
/// The runtime size of FabstirBatchVerifier.
fn forge_test(dir: &Path, what: &str) -> usize {
    let forge = tool("forge");
    assert!(
        forge.exists(),
        "{} is missing: run `npm ci --prefix contracts`",
        forge.display()
    );
    let out = Command::new(&forge)
        .args(["test", "-vv"])
        .current_dir(dir)
        .output()
        .expect("run forge");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "forge test ({what}) failed:\n{text}");
    assert!(text.contains("test_valid_proofs_verify"), "{text}");
    assert!(!text.contains("[FAIL"), "{text}");
    let artifact: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("out/FabstirBatchVerifier.sol/FabstirBatchVerifier.json"))
            .expect("artifact"),
    )
    .expect("artifact JSON");
    let code = artifact["deployedBytecode"]["object"]
        .as_str()
        .expect("deployedBytecode");
    code.trim_start_matches("0x").len() / 2
}

/// EIP-170's limit on runtime code.
const CODE_SIZE_LIMIT: usize = 24_576;

/// The development key's verifier in [`Mode::Loops`], under forge.
#[test]
fn forge_runs_the_loops_verifier_of_the_development_key() {
    let dir = foundry_project(&loops_files(dev_plan(), dev_vectors()));
    let size = forge_test(dir.path(), "development key, loops");
    assert!(size < CODE_SIZE_LIMIT, "{size} bytes");
}

/// The 448-input test circuit's verifier under forge: valid proofs verify,
/// tampered ones do not, and its runtime code is under EIP-170's limit.
#[test]
fn forge_runs_the_verifier_of_448_public_inputs() {
    let wide = wide64();
    let vectors = [wide.prove(11), wide.prove(12)];
    let dir = foundry_project(&loops_files(&wide.plan, &vectors));
    let size = forge_test(dir.path(), "448 public inputs");
    assert!(
        size < CODE_SIZE_LIMIT,
        "runtime code of the 448-input verifier: {size} bytes (limit {CODE_SIZE_LIMIT})"
    );
}

/// An odd number of public inputs (35) and of Lagrange denominators (55 =
/// 3 mod 4): the loops' straight-line remainders, under forge.
#[test]
fn forge_runs_the_verifier_of_an_odd_shape() {
    let wide = Wide::new(Shape::new(5, &[-1, 0, 1, 2, 3], 7));
    assert_eq!(wide.plan.num_instances(), 35);
    assert_eq!(wide.plan.lagrange_indices().count(), 55);
    let vectors = [wide.prove(21), wide.prove(22)];
    for v in &vectors {
        assert!(native::verify(&wide.plan, &v.instances, &v.proof));
        assert!(wide.halo2(&v.instances, &v.proof));
    }
    let dir = foundry_project(&loops_files(&wide.plan, &vectors));
    forge_test(dir.path(), "35 public inputs");
}

// ------------------------------------------------------------ gas

/// anvil's first development account's key.
const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// An anvil on a free port, stopped when dropped.
struct Anvil {
    child: std::process::Child,
    rpc: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(tool("anvil"))
            .args(["--port", &port.to_string(), "--silent"])
            .spawn()
            .expect("start anvil");
        let anvil = Self {
            child,
            rpc: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if anvil.cast(&["block-number"]).is_some() {
                return anvil;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("anvil did not start");
    }

    /// `cast <command> --rpc-url <anvil> <args>`: its output, or None (the
    /// error printed).
    fn cast(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(tool("cast"))
            .arg(args[0])
            .args(["--rpc-url", &self.rpc])
            .args(&args[1..])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("cast {}: {}", args[0], String::from_utf8_lossy(&out.stderr));
        }
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Deploys creation code; the contract's address.
    fn deploy(&self, code: &str) -> String {
        let out = self
            .cast(&[
                "send",
                "--private-key",
                ANVIL_KEY,
                "--json",
                "--create",
                code,
            ])
            .expect("deploy");
        let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
        receipt["contractAddress"]
            .as_str()
            .expect("contractAddress")
            .to_string()
    }

    /// Calls `data` (must return true), then sends it: the transaction's gasUsed.
    fn verify_gas(&self, to: &str, data: &[u8]) -> u64 {
        let data = format!("0x{}", hex::encode(data));
        let answer = self.cast(&["call", to, "--data", &data]).expect("call");
        assert_eq!(
            answer,
            format!("0x{:064x}", 1),
            "verify did not return true"
        );
        let out = self
            .cast(&[
                "send",
                "--private-key",
                ANVIL_KEY,
                "--json",
                "--gas-limit",
                "25000000",
                to,
                "--data",
                &data,
            ])
            .expect("send");
        let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
        let gas = receipt["gasUsed"].as_str().expect("gasUsed");
        u64::from_str_radix(gas.trim_start_matches("0x"), 16).expect("gas")
    }
}

/// Compiles a generated verifier with contracts/tools/compile.js: creation
/// code and runtime size.
fn compile(source: &str, name: &str) -> (String, usize) {
    let dir = foundry_project(&[(format!("src/{name}.sol"), source.to_string())]);
    let out = Command::new("node")
        .arg(repo_root().join("contracts/tools/compile.js"))
        .arg(dir.path().join(format!("src/{name}.sol")))
        .arg(name)
        .current_dir(repo_root().join("contracts"))
        .output()
        .expect("node compile.js");
    assert!(
        out.status.success(),
        "compile.js: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compile.js JSON");
    let code = json[name]["bytecode"]
        .as_str()
        .expect("bytecode")
        .to_string();
    let runtime = json[name]["deployedBytecode"]
        .as_str()
        .expect("deployedBytecode")
        .trim_start_matches("0x")
        .len()
        / 2;
    (code, runtime)
}

/// Calldata gas (EIP-2028): 16 per non-zero byte, 4 per zero byte.
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|b| if *b == 0 { 4 } else { 16 }).sum()
}

/// `verify` gas on anvil: the development key unrolled and with loops; the
/// test circuit with 16, 32 and 64 entries (112, 224, 448 public inputs)
/// at six rotations (-2..3 entries), and with 64 entries at three rotations
/// over the same span (-2, 0, 3: the cost of a rotation) and over a shorter
/// one (-1, 0, 1: 192 fewer Lagrange denominators).
#[test]
#[ignore = "measurement: cargo test -p fabstir-zk --lib evm::loops_tests::measure_gas -- --ignored --nocapture"]
fn measure_gas() {
    let anvil = Anvil::start();
    let mut report = Vec::new();
    let mut run = |what: String, plan: &Plan, mode: Mode, v: &Vector| {
        let verifier = solidity::generate_with(plan, mode);
        let (code, runtime) = compile(&verifier.source, mode.contract_name());
        let address = anvil.deploy(&code);
        let data = match mode {
            Mode::Unrolled => calldata::verify(&v.instances, &v.proof),
            Mode::Loops => calldata::verify_dynamic(&v.instances, &v.proof),
        };
        let gas = anvil.verify_gas(&address, &data);
        let line = format!(
            "{what}: verify {gas} gas (calldata {} B, {} gas of it; execution ~{}), runtime {runtime} B",
            data.len(),
            calldata_gas(&data),
            gas - 21_000 - calldata_gas(&data)
        );
        println!("{line}");
        report.push(line);
    };
    // The largest key that stays unrolled: the development key's plan with
    // UNROLL_LIMIT public inputs (size only).
    let mut widest = dev_plan().clone();
    widest.instance_bits.resize(solidity::UNROLL_LIMIT, 64);
    let (_, runtime) = compile(
        &solidity::generate_with(&widest, Mode::Unrolled).source,
        "FabstirVerifier",
    );
    let (_, loops) = compile(
        &solidity::generate_with(&widest, Mode::Loops).source,
        "FabstirBatchVerifier",
    );
    println!(
        "development key widened to {} public inputs: runtime {runtime} B unrolled, {loops} B loops",
        solidity::UNROLL_LIMIT
    );
    let v = &dev_vectors()[0];
    run("v2 unrolled".into(), dev_plan(), Mode::Unrolled, v);
    run("v2 loops".into(), dev_plan(), Mode::Loops, v);
    for (entries, rotations) in [
        (16, vec![-2, -1, 0, 1, 2, 3]),
        (32, vec![-2, -1, 0, 1, 2, 3]),
        (64, vec![-2, -1, 0, 1, 2, 3]),
        (64, vec![-2, 0, 3]),
        (64, vec![-1, 0, 1]),
    ] {
        let wide = Wide::new(Shape::new(entries, &rotations, 10));
        let v = wide.prove(3);
        run(
            format!(
                "{} public inputs, {} rotations, k = 10",
                wide.shape.instances(),
                rotations.len()
            ),
            &wide.plan,
            Mode::Loops,
            &v,
        );
    }
}

/// With `FABSTIR_WRITE_LOOPS=<dir>`, writes the 448-input verifier and
/// interface there (src/), for inspection with forge.
#[test]
fn write_loops_verifier_for_inspection() {
    if let Ok(dir) = std::env::var("FABSTIR_WRITE_LOOPS") {
        let files = loops_files(&wide64().plan, &[wide64().prove(1), wide64().prove(2)]);
        let project = foundry_project(&files);
        let target = Path::new(&dir);
        std::fs::create_dir_all(target).expect("dir");
        for (path, text) in files.iter().chain(
            [(
                "src/IFabstirBatchVerifier.sol".to_string(),
                std::fs::read_to_string(project.path().join("src/IFabstirBatchVerifier.sol"))
                    .expect("read"),
            )]
            .iter(),
        ) {
            let to = target.join(path);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
            std::fs::write(to, text).expect("write");
        }
    }
}
