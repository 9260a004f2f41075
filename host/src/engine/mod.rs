//! Wasmtime, configured for Weft: the shared [`Engine`], guest sandboxes,
//! resource limits, and loading of (precompiled) components.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod bindings;
pub mod convert;
pub mod entropy;
pub mod limiter;

pub mod output;
pub mod prepared;
pub mod sandbox;

use crate::config::Limits;
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use wasmtime::{Config, Engine};

/// Builds the engine every guest runs on.
///
/// Fuel metering is on (deterministic CPU limits that fail a run with
/// `cpu_limit`), and the stacks are sized so that deep guest recursion hits
/// wasm's stack limit, a clean trap, long before the host's.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);
    Engine::new(&config)
}

/// A stable fingerprint of everything that makes a precompiled artifact
/// loadable by this engine (wasmtime version, target, settings).
pub fn engine_hash(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(h.0.finalize().iter().take(16).copied().collect::<Vec<u8>>())
}

/// Whether a call failed because the guest handed the host a string that
/// is not valid UTF-8 (which the component model forbids): that is bad
/// output, not a crash.
pub fn is_invalid_string(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| cause.is::<std::str::Utf8Error>() || cause.is::<std::string::FromUtf8Error>())
}

/// The engine and the limits every guest is held to.
pub struct WeftEngine {
    pub engine: Engine,
    pub limits: Limits,
    pub engine_hash: String,
}

impl WeftEngine {
    /// The process's engine with `limits`. The engine itself is shared by
    /// every service in the process (compiled code is tied to an engine, so
    /// sharing it lets them share compiled components too).
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        let engine = shared_engine()?;
        let engine_hash = engine_hash(&engine);
        Ok(Self {
            engine,
            limits,
            engine_hash,
        })
    }
}

/// One engine per process, built on first use.
pub fn shared_engine() -> wasmtime::Result<Engine> {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = new_engine()?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}
