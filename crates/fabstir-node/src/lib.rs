//! `fabstir-node`: the host node. `serve` runs the HTTP service (results ->
//! proofs -> durable stores -> checkpoints -> settlement); the other commands
//! manage keys and prove, verify and benchmark from the command line.
//!
//! A result's path through the node, one module per step:
//! [`api`] (HTTP: `POST /v1/results`) -> [`store`] (results table, queued) ->
//! [`prover`] (pool, generator, cache; proofs table) -> [`gate`] (the one
//! check before any payment) -> [`checkpoint`] (token rules, checkpoints
//! table) -> [`chain`] (every way a checkpoint reaches money: the local
//! ledger, or verified submissions to the marketplace contract through the
//! outbox table and the submission worker) -> [`settlement`] (validator,
//! settlements table). [`keys`] holds the key sets, [`config`] the
//! configuration, [`metrics`] the Prometheus metrics, [`health`] the checks
//! behind `/health`, [`datadir`] the data directory's lock and admin token,
//! [`mock`] the test-only mock proofs, [`retention`] the deletion of settled
//! jobs' text, [`reasons`] the stable reason codes, [`malloc`] the
//! allocator's arena cap.
//! Domain modules know nothing of HTTP; [`api`] maps their errors to status
//! codes in one place.

pub mod api;
pub mod backup;
pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod gate;
pub mod health;
pub mod keys;
pub mod malloc;
pub mod metrics;
pub mod mock;
pub mod prover;
pub mod reasons;
pub mod retention;
pub mod settlement;
pub mod store;
pub mod threads;
