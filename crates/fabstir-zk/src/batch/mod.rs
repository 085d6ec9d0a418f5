//! Batch proofs: one proof for `N` checkpoints of one host.
//!
//! A batch proof states, for a host with secret `sk`:
//!
//! - `host_id = Poseidon(sk)`, proved once;
//! - for every entry `i`, `commitment_i = Poseidon(chain_id + 2^64 * tokens_i,
//!   marketplace, job_i.hi, job_i.lo, model_i.hi, model_i.lo, input_i.hi,
//!   input_i.lo, output_i.hi, output_i.lo, host_id)`: exactly the circuit
//!   version 2 commitment ([`crate::Statement::commitment`]), so a client
//!   holding one checkpoint's result recomputes its commitment as for a
//!   single proof.
//!
//! `chain_id`, `marketplace` and `host_id` are shared by all entries; each
//! entry has its own `job_id`, cumulative `tokens` and commitment (public)
//! and its own model, input and output hashes (private). A batch that is
//! not full is padded with [`BatchEntry::padding`] (job 0, no tokens, zero
//! hashes; a contract treats job 0 as padding). The layout is specified in
//! [`layout`]; the proof uses the transcript and multi-opening of every
//! proof of this crate.
//!
//! ```no_run
//! use std::sync::Arc;
//! use fabstir_zk::{BatchProof, BatchProvingKey, BatchSize, BatchStatement, HostKey, Srs};
//! # fn statements() -> Vec<fabstir_zk::Statement> { unimplemented!() }
//! let size = BatchSize::new(16).unwrap();
//! let srs = Arc::new(Srs::insecure_dev_at(size.k()).unwrap());
//! let pk = BatchProvingKey::build(srs, size).unwrap();
//! let host = HostKey::generate(rand::rngs::OsRng);
//! // Statements of one host, chain and marketplace, at most 16 of them.
//! let batch = BatchStatement::from_statements(&statements()).unwrap().padded(size).unwrap();
//! let proof = BatchProof::create(&pk, &batch, &host, rand::rngs::OsRng).unwrap();
//! // A verifier computes the public inputs itself.
//! proof.verify(pk.verifying_key(), &batch.public()).unwrap();
//! ```

pub mod check;
mod circuit;
pub mod encoding;
pub mod layout;
#[cfg(test)]
mod tests;
mod witness;

use std::fmt;
use std::sync::Arc;

use halo2_axiom::halo2curves::bn256::{Fr, G1Affine};
use halo2_axiom::halo2curves::ff::Field;
use halo2_axiom::plonk::{self, keygen_pk, keygen_vk};
use halo2_axiom::SerdeFormat;
use rand::{CryptoRng, RngCore};

pub use layout::BatchSize;

use crate::circuit::uniqueness::{ConstraintAnalysis, UniquenessReport};
use crate::envelope::ProofLayout;
use crate::error::{BatchError, InputError, KeyError, UniquenessError};
use crate::host::HostKey;
use crate::keys::VkId;
use crate::srs::Srs;
use crate::statement::{Address, Digest32, FieldHex, HostId, Instance, JobId, Statement};
use circuit::BatchCircuit;
use layout::{band, band_of, instance_row, BANDS};

/// One checkpoint of a batch: its public job and token count and its
/// private hashes (as in [`Statement`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    /// The job (public).
    pub job_id: JobId,
    /// The job's cumulative token count (public).
    pub tokens: u64,
    /// SHA-256 of the model file (or of its name).
    pub model_hash: Digest32,
    /// SHA-256 of the prompt bytes.
    pub input_hash: Digest32,
    /// SHA-256 of the response bytes.
    pub output_hash: Digest32,
}

impl BatchEntry {
    /// A padding entry: job 0, no tokens, zero hashes. Its commitment is the
    /// version 2 commitment of these values; a contract never pays job 0.
    pub fn padding() -> Self {
        Self {
            job_id: JobId([0; 32]),
            tokens: 0,
            model_hash: Digest32([0; 32]),
            input_hash: Digest32([0; 32]),
            output_hash: Digest32([0; 32]),
        }
    }

    /// Whether this is a padding entry (job 0).
    pub fn is_padding(&self) -> bool {
        self.job_id.0 == [0; 32]
    }

    /// The entry of a single statement.
    pub fn of_statement(statement: &Statement) -> Self {
        Self {
            job_id: statement.job_id,
            tokens: statement.tokens,
            model_hash: statement.model_hash,
            input_hash: statement.input_hash,
            output_hash: statement.output_hash,
        }
    }
}

/// A batch with its private hashes: what the host proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchStatement {
    /// Chain id, shared by all entries.
    pub chain_id: u64,
    /// Marketplace contract, shared by all entries.
    pub marketplace: Address,
    /// The host, shared by all entries.
    pub host_id: HostId,
    /// The entries, in instance order.
    pub entries: Vec<BatchEntry>,
}

impl BatchStatement {
    /// The batch of single statements of one chain, marketplace and host,
    /// in this order.
    pub fn from_statements(statements: &[Statement]) -> Result<Self, BatchError> {
        let first = statements.first().ok_or(BatchError::Empty)?;
        for (entry, s) in statements.iter().enumerate() {
            for (field, differs) in [
                ("chain_id", s.chain_id != first.chain_id),
                ("marketplace", s.marketplace != first.marketplace),
                ("host_id", s.host_id != first.host_id),
            ] {
                if differs {
                    return Err(BatchError::Shared { entry, field });
                }
            }
        }
        Ok(Self {
            chain_id: first.chain_id,
            marketplace: first.marketplace,
            host_id: first.host_id,
            entries: statements.iter().map(BatchEntry::of_statement).collect(),
        })
    }

    /// The batch filled up to `size` entries with [`BatchEntry::padding`].
    pub fn padded(mut self, size: BatchSize) -> Result<Self, BatchError> {
        if self.entries.len() > size.get() {
            return Err(BatchError::EntryCount {
                expected: size.get(),
                found: self.entries.len(),
            });
        }
        self.entries.resize(size.get(), BatchEntry::padding());
        Ok(self)
    }

    /// The single statement of entry `entry`: its commitment is the entry's.
    pub fn entry_statement(&self, entry: usize) -> Option<Statement> {
        let e = self.entries.get(entry)?;
        Some(Statement {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            job_id: e.job_id,
            model_hash: e.model_hash,
            input_hash: e.input_hash,
            output_hash: e.output_hash,
            host_id: self.host_id,
            tokens: e.tokens,
        })
    }

    fn statements(&self) -> impl Iterator<Item = Statement> + '_ {
        (0..self.entries.len()).filter_map(|i| self.entry_statement(i))
    }

    /// The public inputs of the batch (each entry's commitment computed).
    pub fn public(&self) -> BatchPublic {
        BatchPublic {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            host_id: self.host_id,
            entries: self
                .statements()
                .map(|s| BatchPublicEntry {
                    job_id: s.job_id,
                    tokens: s.tokens,
                    commitment: FieldHex(s.commitment()),
                })
                .collect(),
        }
    }
}

/// One entry's public inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPublicEntry {
    /// The job.
    pub job_id: JobId,
    /// The job's cumulative token count.
    pub tokens: u64,
    /// The entry's commitment (the version 2 commitment of its statement).
    pub commitment: FieldHex,
}

/// The public inputs of a batch proof: what a verifier computes from the
/// results it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPublic {
    /// Chain id.
    pub chain_id: u64,
    /// Marketplace contract.
    pub marketplace: Address,
    /// The host.
    pub host_id: HostId,
    /// The entries, in instance order.
    pub entries: Vec<BatchPublicEntry>,
}

impl BatchPublic {
    /// The batch of the single public inputs of one chain, marketplace and
    /// host (circuit version 2: with `tokens`), in this order.
    pub fn from_instances(instances: &[Instance]) -> Result<Self, BatchError> {
        let first = instances.first().ok_or(BatchError::Empty)?;
        let mut entries = Vec::with_capacity(instances.len());
        for (entry, instance) in instances.iter().enumerate() {
            for (field, differs) in [
                ("chain_id", instance.chain_id != first.chain_id),
                ("marketplace", instance.marketplace != first.marketplace),
                ("host_id", instance.host_id != first.host_id),
                ("tokens", instance.tokens.is_none()),
            ] {
                if differs {
                    return Err(BatchError::Shared { entry, field });
                }
            }
            entries.push(BatchPublicEntry {
                job_id: instance.job_id,
                tokens: instance.tokens.unwrap_or_default(),
                commitment: instance.commitment,
            });
        }
        Ok(Self {
            chain_id: first.chain_id,
            marketplace: first.marketplace,
            host_id: first.host_id,
            entries,
        })
    }

    /// The public inputs filled up to `size` entries with the padding
    /// entry's.
    pub fn padded(mut self, size: BatchSize) -> Result<Self, BatchError> {
        let statement = BatchStatement {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            host_id: self.host_id,
            entries: vec![BatchEntry::padding()],
        };
        let padding = statement.public().entries[0];
        if self.entries.len() > size.get() {
            return Err(BatchError::EntryCount {
                expected: size.get(),
                found: self.entries.len(),
            });
        }
        self.entries.resize(size.get(), padding);
        Ok(self)
    }

    /// Entry `entry`'s public inputs as those of a single version 2 proof.
    pub fn entry_instance(&self, entry: usize) -> Option<Instance> {
        let e = self.entries.get(entry)?;
        Some(Instance {
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            job_id: e.job_id,
            tokens: Some(e.tokens),
            host_id: self.host_id,
            commitment: e.commitment,
        })
    }

    /// The instance column: `7 N` elements in bands ([`layout`]), entry
    /// `i`'s value of band `b` at `b * N + i`; the shared values are
    /// repeated in every entry, as the circuit requires.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        let n = self.entries.len();
        let mut out = vec![Fr::ZERO; BANDS * n];
        for entry in 0..n {
            if let Some(instance) = self.entry_instance(entry) {
                for (row, value) in instance.to_field_elements().into_iter().enumerate() {
                    out[band_of(row) * n + entry] = value;
                }
            }
        }
        out
    }

    /// Rebuilds the public inputs of a batch of `size` from the instance
    /// column, checking every range (chain id and tokens below 2^64, address
    /// below 2^160, job limbs below 2^128) and that every entry repeats
    /// entry 0's chain id, marketplace and host_id.
    pub fn from_field_elements(size: BatchSize, elements: &[Fr]) -> Result<Self, BatchError> {
        let n = size.get();
        if elements.len() != size.instance_count() {
            return Err(BatchError::InstanceCount {
                entries: n,
                expected: size.instance_count(),
                found: elements.len(),
            });
        }
        let mut instances = Vec::with_capacity(n);
        for entry in 0..n {
            let single: Vec<Fr> = (0..crate::circuit::layout::instance::COUNT)
                .map(|row| elements[instance_row(size, band_of(row), entry)])
                .collect();
            let instance = Instance::from_field_elements(&single).map_err(|e| match e {
                InputError::InstanceRange { index, .. } => BatchError::InstanceRange {
                    index: instance_row(size, band_of(index), entry),
                    entry,
                    field: band::NAMES[band_of(index)],
                },
                // Seven elements always make a version 2 instance.
                _ => BatchError::InstanceCount {
                    entries: n,
                    expected: size.instance_count(),
                    found: elements.len(),
                },
            })?;
            instances.push(instance);
        }
        for (entry, instance) in instances.iter().enumerate() {
            for (b, differs) in [
                (band::CHAIN_ID, instance.chain_id != instances[0].chain_id),
                (
                    band::MARKETPLACE,
                    instance.marketplace != instances[0].marketplace,
                ),
                (band::HOST_ID, instance.host_id != instances[0].host_id),
            ] {
                if differs {
                    return Err(BatchError::InstanceShared {
                        index: instance_row(size, b, entry),
                        entry,
                        field: band::NAMES[b],
                    });
                }
            }
        }
        Self::from_instances(&instances)
    }

    /// The names of the public inputs in which `self` differs from `other`
    /// (`chain_id`, `marketplace`, `host_id`, `entries`, `entries[i].job_id`,
    /// `entries[i].tokens`, `entries[i].commitment`).
    pub fn differences(&self, other: &BatchPublic) -> Vec<String> {
        let mut out: Vec<String> = [
            ("chain_id", self.chain_id != other.chain_id),
            ("marketplace", self.marketplace != other.marketplace),
            ("host_id", self.host_id != other.host_id),
            ("entries", self.entries.len() != other.entries.len()),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(field, _)| field.to_string())
        .collect();
        for (i, (a, b)) in self.entries.iter().zip(&other.entries).enumerate() {
            for (field, differs) in [
                ("job_id", a.job_id != b.job_id),
                ("tokens", a.tokens != b.tokens),
                ("commitment", a.commitment != b.commitment),
            ] {
                if differs {
                    out.push(format!("entries[{i}].{field}"));
                }
            }
        }
        out
    }
}

/// The verifying key of the batch circuit of one size, with the parameters
/// verification needs.
#[derive(Clone)]
pub struct BatchVerifyingKey {
    vk: plonk::VerifyingKey<G1Affine>,
    srs: Arc<Srs>,
    size: BatchSize,
    id: VkId,
    layout: ProofLayout,
}

impl fmt::Debug for BatchVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchVerifyingKey")
            .field("vk_id", &self.id)
            .field("size", &self.size)
            .field("srs", &self.srs)
            .finish()
    }
}

/// The parameters cut to `2^k` rows, or why they cannot be.
fn params_for(srs: &Arc<Srs>, size: BatchSize) -> Result<Arc<Srs>, KeyError> {
    if srs.k() == size.k() {
        Ok(Arc::clone(srs))
    } else {
        srs.downsized(size.k()).map(Arc::new)
    }
}

impl BatchVerifyingKey {
    /// Derives the verifying key of batches of `size` from the parameters
    /// (at least `2^size.k()` rows: [`Srs::insecure_dev_at`] for
    /// development; larger parameters are cut down).
    pub fn derive(srs: Arc<Srs>, size: BatchSize) -> Result<Self, KeyError> {
        crate::keys::check_environment()?;
        let srs = params_for(&srs, size)?;
        let vk = keygen_vk(srs.params(), &BatchCircuit::new(size))
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        let id = VkId::of_batch(&vk, size.get(), &srs);
        let layout = ProofLayout::of(vk.cs());
        Ok(Self {
            vk,
            srs,
            size,
            id,
            layout,
        })
    }

    /// The key for batches of `size` under a key directory's parameters
    /// (a key directory stores the SRS cut to the single circuit's 2^7
    /// rows): derived from them when they have enough rows (a batch of 1),
    /// or, when they are the insecure development SRS, from the development
    /// setup at the size's rows ([`Srs::insecure_dev_shared_at`], the same
    /// secret, so the same verifier points; one copy per `k` however many
    /// sizes are derived). Any other SRS with fewer rows than the
    /// size needs is refused ([`KeyError::BatchSrs`]): its larger powers are
    /// not stored. Key generation costs seconds at the larger sizes: callers
    /// derive once per size and keep the key.
    pub fn for_key_srs(srs: &Arc<Srs>, size: BatchSize) -> Result<Self, KeyError> {
        if srs.k() >= size.k() {
            return Self::derive(Arc::clone(srs), size);
        }
        let dev = Srs::insecure_dev();
        if srs.trust() == crate::SrsTrust::InsecureDev
            && srs.k() == dev.k()
            && srs.sha256() == dev.sha256()
        {
            return Self::derive(Srs::insecure_dev_shared_at(size.k())?, size);
        }
        Err(KeyError::BatchSrs {
            entries: size.get(),
            needed: size.k(),
            found: srs.k(),
        })
    }

    /// The batch size this key verifies.
    pub fn size(&self) -> BatchSize {
        self.size
    }

    /// The key's identity: SHA-256 over a batch domain tag, the batch
    /// size, the verifying key bytes, its transcript representation and
    /// the verifier's SRS points.
    pub fn id(&self) -> VkId {
        self.id
    }

    /// The parameters this key verifies with.
    pub fn srs(&self) -> &Arc<Srs> {
        &self.srs
    }

    /// Length of this key's proofs in bytes.
    pub fn proof_len(&self) -> usize {
        self.layout.proof_len()
    }

    /// halo2's own description of the key (`vk.pinned()`, pretty debug form).
    pub fn pinned(&self) -> String {
        format!("{:#?}\n", self.vk.pinned())
    }

    /// A readable description of the key (as
    /// [`crate::VerifyingKey::description`]): shape, queries, gates, fixed
    /// commitments, transcript representation and id.
    pub fn description(&self) -> String {
        crate::keys::describe(
            &self.vk,
            &format!("fabstir-zk batch verifying key, {} entries", self.size),
            self.id,
        )
    }

    /// halo2's verifying key (the EVM plan reads its constraint system).
    pub(crate) fn halo2(&self) -> &plonk::VerifyingKey<G1Affine> {
        &self.vk
    }

    /// The key as the single circuit's key type, for the tools that read
    /// any verifying key of this crate's shape (the EVM plan).
    #[cfg(test)]
    pub(crate) fn as_single_key(&self) -> crate::keys::VerifyingKey {
        crate::keys::VerifyingKey::from_parts(
            self.vk.clone(),
            Arc::clone(&self.srs),
            self.id,
            crate::CircuitVersion::V2,
        )
    }

    /// halo2's verdict on raw proof bytes for a raw instance column (the
    /// proof must have exactly this key's proof length).
    pub(crate) fn verify_raw(&self, instances: &[Fr], proof: &[u8]) -> bool {
        proof.len() == self.proof_len()
            && crate::proof::verify_with(self.srs.params(), &self.vk, instances, proof)
    }
}

/// The proving key of the batch circuit of one size.
pub struct BatchProvingKey {
    pk: plonk::ProvingKey<G1Affine>,
    vk: BatchVerifyingKey,
}

impl fmt::Debug for BatchProvingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchProvingKey")
            .field("vk_id", &self.vk.id)
            .field("size", &self.vk.size)
            .finish_non_exhaustive()
    }
}

impl BatchProvingKey {
    /// Generates the proving key for batches of `size` under `srs` (at least
    /// `2^size.k()` rows).
    pub fn build(srs: Arc<Srs>, size: BatchSize) -> Result<Self, KeyError> {
        let vk = BatchVerifyingKey::derive(srs, size)?;
        let pk = keygen_pk(vk.srs.params(), vk.vk.clone(), &BatchCircuit::new(size))
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        Ok(Self { pk, vk })
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> &BatchVerifyingKey {
        &self.vk
    }

    /// The batch size this key proves.
    pub fn size(&self) -> BatchSize {
        self.vk.size
    }

    /// The verifying key's identity.
    pub fn vk_id(&self) -> VkId {
        self.vk.id
    }

    /// The proving key's bytes (halo2's raw format).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.pk.to_bytes(SerdeFormat::RawBytes)
    }

    /// This key's constraint system and fixed columns, analysed
    /// ([`crate::circuit::uniqueness`]).
    pub fn constraint_analysis(&self) -> Result<ConstraintAnalysis, UniquenessError> {
        let fixed: Vec<&[Fr]> = self.pk.fixed_values().iter().map(|p| &p[..]).collect();
        ConstraintAnalysis::of_constraint_system(
            self.pk.get_vk().cs(),
            &fixed,
            1 << self.size().k(),
            self.size().instance_count(),
        )
    }

    /// Checks that this key's constraints determine every cell they read
    /// from the batch's free cells ([`layout::free_cells`]).
    pub fn check_unique_witness(&self) -> Result<UniquenessReport, UniquenessError> {
        self.constraint_analysis()?
            .propagate(&layout::free_cells(self.size()))
    }
}

/// A batch proof with the public inputs it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProof {
    /// The verifying key the proof was made for.
    pub vk_id: VkId,
    /// The batch size.
    pub size: BatchSize,
    /// The public inputs (a verifier compares them with its own).
    pub public: BatchPublic,
    /// The halo2 proof bytes (Keccak/EVM transcript, SHPLONK).
    pub proof: Vec<u8>,
}

impl BatchProof {
    /// Proves `statement` (exactly `pk.size()` entries; pad it with
    /// [`BatchStatement::padded`]) for the holder of `host_key`.
    pub fn create<R: RngCore + CryptoRng>(
        pk: &BatchProvingKey,
        statement: &BatchStatement,
        host_key: &HostKey,
        rng: R,
    ) -> Result<Self, BatchError> {
        let size = pk.size();
        if statement.entries.len() != size.get() {
            return Err(BatchError::EntryCount {
                expected: size.get(),
                found: statement.entries.len(),
            });
        }
        if host_key.host_id() != statement.host_id {
            return Err(BatchError::WrongHostKey);
        }
        let inputs: Vec<[Fr; 11]> = statement
            .statements()
            .map(|s| s.commitment_inputs())
            .collect();
        let grid = witness::build(size, &inputs, host_key.secret());
        let public = statement.public();
        let proof = crate::proof::prove_with(
            pk.vk.srs.params(),
            &pk.pk,
            grid.into_columns(),
            &public.to_field_elements(),
            rng,
        )
        .map_err(|e| BatchError::Backend(e.to_string()))?;
        Ok(Self {
            vk_id: pk.vk_id(),
            size,
            public,
            proof,
        })
    }

    /// Verifies the proof for `expected`, the public inputs the verifier
    /// computed itself from the results it holds (never those in the proof).
    pub fn verify(&self, vk: &BatchVerifyingKey, expected: &BatchPublic) -> Result<(), BatchError> {
        if self.size != vk.size {
            return Err(BatchError::KeySize {
                key: vk.size.get(),
                proof: self.size.get(),
            });
        }
        if self.vk_id != vk.id {
            return Err(BatchError::UnknownVerifyingKey {
                expected: vk.id.to_string(),
                found: self.vk_id.to_string(),
            });
        }
        if expected.entries.len() != vk.size.get() {
            return Err(BatchError::EntryCount {
                expected: vk.size.get(),
                found: expected.entries.len(),
            });
        }
        if let Some(field) = self.public.differences(expected).into_iter().next() {
            return Err(BatchError::PublicMismatch { field });
        }
        vk.layout.validate(&self.proof)?;
        if vk.verify_raw(&expected.to_field_elements(), &self.proof) {
            Ok(())
        } else {
            Err(BatchError::Invalid)
        }
    }
}
