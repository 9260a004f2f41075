//! The Weft host: replays durable WebAssembly workflows and runs their steps.
//!
//! See the repository README for the architecture; each module's doc says
//! what it owns.

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
pub mod aws;
pub mod cli;
pub mod config;
pub mod engine;
pub mod lambda;
pub mod model;
pub mod modules;
pub mod queue;
pub mod replay;
pub mod rpc;
pub mod service;
pub mod store;
pub mod util;
