//! The Weft host: replays durable WebAssembly workflows and runs their steps.
//!
//! # Module map
//!
//! A module uses only modules of lower rank. Data flows one way: an API request or a queue message reaches
//! [`service`], which replays the run with [`replay`] (on [`engine`]) and
//! persists the decisions through the seams in [`backend`]. Lower layers
//! never name higher ones; `scripts/check-layers` (run by `make lint`)
//! fails the build on a cycle or on a concrete backend named outside its
//! folder and the binaries' wiring.
//!
//! | rank | module | job |
//! |---|---|---|
//! | 0 | [`model`] | runs, steps, outcomes, errors, messages, retry arithmetic, time: plain data, no I/O |
//! | 0 | [`util`] | atomic file writes |
//! | 0 | [`config`] | limits and execution mode from the environment |
//! | 1 | [`engine`] | wasmtime: engine config, bindings, deterministic WASI, limits, guest↔model conversions, the prepared-component cache |
//! | 1 | [`backend`] | the seams (`StateStore`, `WorkQueue`, `ModuleStore`, `BlobStore`, `Backends`); [`backend::payloads`] over any state store; [`backend::sqlite`] and [`backend::aws`] behind them |
//! | 2 | [`replay`] | one activation: journal in, guest run, decisions out through a `StepDriver`; knows no backend |
//! | 2 | [`rpc`] | one RPC attempt in its sandbox, with the HTTP allow-list |
//! | 3 | [`registry`] | validating, versioning, loading and preparing modules |
//! | 4 | [`service`] | orchestration: start, resume, drive steps, timers, the worker loop and recovery sweep |
//! | 5 | [`api`] | the HTTP API (axum) |
//! | 6 | [`cli`], [`lambda`] | the edges: the `weft` CLI, the Lambda handlers; they build `Backends` |
//!
//! `docs/architecture.md` traces one run through these files.

// Nothing reachable from a request or a guest may panic: failures are
// values. Tests are free to unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod api;
pub mod backend;
pub mod cli;
pub mod config;
pub mod engine;
pub mod lambda;
pub mod model;
pub mod registry;
pub mod replay;
pub mod rpc;
pub mod service;
pub mod util;
