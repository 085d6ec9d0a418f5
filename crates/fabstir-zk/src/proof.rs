//! Creating and verifying proofs.
//!
//! The transcript is snark-verifier's Keccak-based EVM transcript, so the
//! same proof bytes can be checked by a Solidity verifier generated with
//! `snark-verifier` (see `docs/PROOF-SYSTEM.md` for the choice and its cost).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use halo2_axiom::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_axiom::plonk::{self, create_proof_from_advice, verify_proof};
use halo2_axiom::poly::commitment::ParamsProver;
use halo2_axiom::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_axiom::poly::kzg::multiopen::{ProverSHPLONK, VerifierSHPLONK};
use halo2_axiom::poly::kzg::strategy::{AccumulatorStrategy, SingleStrategy};
use halo2_axiom::poly::VerificationStrategy;
use halo2_axiom::transcript::TranscriptWriterBuffer;
use rand::{CryptoRng, RngCore};
use snark_verifier::loader::native::NativeLoader;
use snark_verifier::system::halo2::transcript::evm::EvmTranscript;

use crate::circuit::Grid;
use crate::envelope::{ProofEnvelope, ProofLayout};
use crate::error::{ProveError, VerifyError};
use crate::host::HostKey;
use crate::keys::{ProvingKey, VerifyingKey};
use crate::statement::{Instance, Statement};

/// Default time allowed for one proof.
pub const DEFAULT_PROVE_TIMEOUT: Duration = Duration::from_secs(5);

type ReadTranscript<'a> = EvmTranscript<G1Affine, NativeLoader, &'a [u8], Vec<u8>>;

/// Runs `op` on a rayon worker thread, catching panics.
///
/// halo2 parallelises many small steps; called from a thread outside the
/// pool, each step is handed to the pool and the caller sleeps until it is
/// done, a futex round trip per step. On a worker the steps run (and split)
/// locally, which measured 1.56 -> 0.86 ms per proof in batch verification.
fn in_worker<T: Send>(op: impl FnOnce() -> T + Send) -> std::thread::Result<T> {
    rayon::scope(|_| catch_unwind(AssertUnwindSafe(op)))
}

/// The proof a prover thread sends, or why none came within `timeout`.
fn await_proof(
    receiver: &mpsc::Receiver<Result<ProofEnvelope, ProveError>>,
    timeout: Duration,
) -> Result<ProofEnvelope, ProveError> {
    match receiver.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ProveError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(ProveError::Backend("prover thread died".into()))
        }
    }
}

impl ProofEnvelope {
    /// Proves `statement` for the holder of `host_key`, with randomness from
    /// `rng`. A statement whose job id lies in the domain reserved for
    /// registrations is refused ([`ProveError::ReservedJobId`]): those are
    /// made by [`ProofEnvelope::create_registration`] only.
    pub fn create<R: RngCore + CryptoRng>(
        pk: &ProvingKey,
        statement: &Statement,
        host_key: &HostKey,
        rng: R,
    ) -> Result<Self, ProveError> {
        if statement.is_registration() {
            return Err(ProveError::ReservedJobId);
        }
        Self::create_any(pk, statement, host_key, rng)
    }

    /// [`ProofEnvelope::create`] without the reserved-domain check.
    pub(crate) fn create_any<R: RngCore + CryptoRng>(
        pk: &ProvingKey,
        statement: &Statement,
        host_key: &HostKey,
        rng: R,
    ) -> Result<Self, ProveError> {
        if host_key.host_id() != statement.host_id {
            return Err(ProveError::WrongHostKey);
        }
        let version = pk.version();
        let instance = statement.instance_for(version);
        let grid = Grid::build(&statement.commitment_inputs_for(version), host_key.secret());
        let proof = prove_grid(pk, grid, &instance.to_field_elements(), rng)?;
        Ok(Self {
            vk_id: pk.vk_id(),
            instance,
            proof,
        })
    }

    /// [`ProofEnvelope::create`] with OS randomness, giving up after `timeout`.
    ///
    /// Proving cannot be interrupted, so on timeout the work finishes in the
    /// background and its result is discarded.
    pub fn create_with_timeout(
        pk: Arc<ProvingKey>,
        statement: Statement,
        host_key: Arc<HostKey>,
        timeout: Duration,
    ) -> Result<Self, ProveError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("fabstir-prover".into())
            .spawn(move || {
                let result = Self::create(&pk, &statement, &host_key, rand::rngs::OsRng);
                let _ = sender.send(result);
            })
            .map_err(|e| ProveError::Backend(format!("cannot start prover thread: {e}")))?;
        await_proof(&receiver, timeout)
    }

    /// [`ProofEnvelope::create`] with OS randomness on `pool` (its threads do
    /// all of the proof's parallel work), giving up after `timeout`.
    ///
    /// A node gives each prover worker a pool of its own: proofs that share
    /// one pool contend for its queues, and throughput stops growing with
    /// cores. On timeout the proof finishes on the pool and is discarded.
    pub fn create_in(
        pool: &rayon::ThreadPool,
        pk: Arc<ProvingKey>,
        statement: Statement,
        host_key: Arc<HostKey>,
        timeout: Duration,
    ) -> Result<Self, ProveError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        pool.spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                Self::create(&pk, &statement, &host_key, rand::rngs::OsRng)
            }))
            .unwrap_or_else(|_| Err(ProveError::Backend("the prover panicked".into())));
            let _ = sender.send(result);
        });
        await_proof(&receiver, timeout)
    }

    /// The circuit version of the proof (of its public inputs). A verifier
    /// computes the expected public inputs for it
    /// ([`crate::Statement::instance_for`]) and picks the verifying key by
    /// `vk_id`.
    pub fn version(&self) -> crate::CircuitVersion {
        self.instance.version()
    }

    /// Checks everything but the pairing: key, public inputs, encoding.
    fn precheck(&self, vk: &VerifyingKey, expected: &Instance) -> Result<(), VerifyError> {
        if self.vk_id != vk.id() {
            return Err(VerifyError::UnknownVerifyingKey {
                expected: vk.id().to_string(),
                found: self.vk_id.to_string(),
            });
        }
        if self.version() != vk.version() {
            return Err(VerifyError::CircuitVersion {
                key: vk.version().as_u8(),
                proof: self.version().as_u8(),
            });
        }
        if let Some(field) = self.instance.differences(expected).first() {
            return Err(VerifyError::InstanceMismatch { field });
        }
        ProofLayout::get().validate(&self.proof)?;
        Ok(())
    }

    /// Verifies the proof for `expected`, the public inputs the verifier
    /// computed itself from the result it holds (never those in the
    /// envelope), for the proof's circuit version: a version 1 proof is
    /// refused against version 2 public inputs (`tokens` differs) and the
    /// other way round.
    pub fn verify(&self, vk: &VerifyingKey, expected: &Instance) -> Result<(), VerifyError> {
        self.precheck(vk, expected)?;
        if halo2_verify(vk, &expected.to_field_elements(), &self.proof) {
            Ok(())
        } else {
            Err(VerifyError::Invalid)
        }
    }
}

/// halo2's verdict on raw proof bytes for raw public inputs (the proof
/// must also have exactly the key's proof length: halo2 ignores trailing
/// bytes). The envelope checks come first in [`ProofEnvelope::verify`]; the
/// EVM verifier's tests compare their verdicts with this one.
pub(crate) fn halo2_verify(vk: &VerifyingKey, instances: &[Fr], proof: &[u8]) -> bool {
    if proof.len() != ProofLayout::get().proof_len() {
        return false;
    }
    verify_with(vk.srs.params(), &vk.vk, instances, proof)
}

/// halo2's verdict on proof bytes for one instance column, with the
/// transcript and multi-opening of every proof of this crate (the caller
/// checks the proof's length: halo2 ignores trailing bytes).
pub(crate) fn verify_with(
    params: &ParamsKZG<Bn256>,
    vk: &plonk::VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> bool {
    in_worker(|| {
        let mut transcript = ReadTranscript::new(proof);
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            params.verifier_params(),
            vk,
            SingleStrategy::new(params),
            &[&[instances]],
            &mut transcript,
        )
        .is_ok()
    })
    .unwrap_or(false)
}

/// Proves a complete witness grid for `instances` (the instance column).
///
/// halo2's prover does not check the constraints: a grid that breaks one
/// still gives proof bytes, which the verifier must reject. The soundness
/// tests prove tampered grids through this, exactly as
/// [`ProofEnvelope::create`] proves honest ones.
pub(crate) fn prove_grid<R: RngCore + CryptoRng>(
    pk: &ProvingKey,
    grid: Grid,
    instances: &[Fr],
    rng: R,
) -> Result<Vec<u8>, ProveError> {
    prove_with(
        pk.verifying_key().srs.params(),
        &pk.pk,
        grid.into_columns(),
        instances,
        rng,
    )
}

/// Proves advice `columns` (every advice column, `2^k` rows) for one
/// instance column, with the transcript of every proof of this crate.
pub(crate) fn prove_with<R: RngCore + CryptoRng>(
    params: &ParamsKZG<Bn256>,
    pk: &plonk::ProvingKey<G1Affine>,
    columns: Vec<Vec<Fr>>,
    instances: &[Fr],
    rng: R,
) -> Result<Vec<u8>, ProveError> {
    // Unlike verification, proving measured slower on a worker thread
    // (34 ms vs 49 ms), so it runs on the caller's thread.
    catch_unwind(AssertUnwindSafe(|| {
        let mut transcript =
            EvmTranscript::<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>::init(Vec::new());
        create_proof_from_advice::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _>(
            params,
            pk,
            &[instances],
            columns,
            rng,
            &mut transcript,
        )
        .map(|()| transcript.finalize())
    }))
    .map_err(|_| ProveError::Backend("prover panicked".into()))?
    .map_err(|e| ProveError::Backend(e.to_string()))
}

/// Verifies many proofs, amortising the pairing check.
///
/// Each proof is first checked for key, public inputs and encoding. The
/// well-formed ones are split into one contiguous chunk per core; each chunk
/// is folded into a KZG accumulator with random weights and checked with a
/// single pairing, so a batch costs one pairing check per core rather than
/// one per proof. If a chunk's check fails, its proofs are verified one by
/// one so that the result says exactly which are invalid.
pub fn verify_batch(
    vk: &VerifyingKey,
    items: &[(&ProofEnvelope, &Instance)],
) -> Vec<Result<(), VerifyError>> {
    use rayon::prelude::*;
    let mut results: Vec<Result<(), VerifyError>> =
        items.iter().map(|(p, i)| p.precheck(vk, i)).collect();
    let candidates: Vec<usize> = (0..items.len()).filter(|i| results[*i].is_ok()).collect();
    if candidates.is_empty() {
        return results;
    }
    let chunk_len = candidates
        .len()
        .div_ceil(rayon::current_num_threads().max(1));
    let failed: Vec<usize> = candidates
        .par_chunks(chunk_len)
        .filter(|chunk| !accumulate_and_check(vk, items, chunk))
        .flat_map_iter(|chunk| chunk.iter().copied())
        .collect();
    let retried: Vec<(usize, Result<(), VerifyError>)> = failed
        .into_par_iter()
        .map(|i| (i, items[i].0.verify(vk, items[i].1)))
        .collect();
    for (i, result) in retried {
        results[i] = result;
    }
    results
}

/// Folds the proofs `chunk` (indices into `items`) into one accumulator and
/// checks it with one pairing. False if any proof fails or cannot be read.
fn accumulate_and_check(
    vk: &VerifyingKey,
    items: &[(&ProofEnvelope, &Instance)],
    chunk: &[usize],
) -> bool {
    let params = vk.srs.params();
    catch_unwind(AssertUnwindSafe(|| {
        let mut strategy = AccumulatorStrategy::new(params);
        for &i in chunk {
            let (envelope, instance) = items[i];
            let instances = instance.to_field_elements();
            let mut transcript = ReadTranscript::new(envelope.proof.as_slice());
            strategy = match verify_proof::<
                KZGCommitmentScheme<Bn256>,
                VerifierSHPLONK<'_, Bn256>,
                _,
                _,
                _,
            >(
                params.verifier_params(),
                &vk.vk,
                strategy,
                &[&[&instances]],
                &mut transcript,
            ) {
                Ok(strategy) => strategy,
                Err(_) => return false,
            };
        }
        VerificationStrategy::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>>::finalize(
            strategy,
        )
    }))
    .unwrap_or(false)
}
