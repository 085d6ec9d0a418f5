//! The integration tests of `fabstir-zk`, one module per area, linked into
//! one test binary (`cargo test -p fabstir-zk --test it`; a module alone:
//! `cargo test -p fabstir-zk --test it -- <module>::`).

mod batch;
mod common;
mod envelope_malformed;
mod keys;
mod poseidon_vs_light_poseidon;
mod prove_verify;
mod statement;
mod vectors;
