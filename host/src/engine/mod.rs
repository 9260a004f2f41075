//! Wasmtime, configured for Weft: the shared [`Engine`], guest sandboxes,
//! resource limits, and loading of (precompiled) components.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod bindings;
pub mod convert;
pub mod entropy;
pub mod limiter;

pub mod output;
pub mod pool;
pub mod prepared;
pub mod sandbox;

use crate::config::Limits;
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use wasmtime::{Config, Engine};

/// Builds the engine every guest runs on, with `pool` instance slots.
///
/// Fuel metering is on (deterministic CPU limits that fail a run with
/// `cpu_limit`), the stacks are sized so that deep guest recursion hits
/// wasm's stack limit, a clean trap, long before the host's, and instances
/// come from a pool of reusable slots (see [`pool`]).
pub fn new_engine(pool: pool::PoolSize) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);
    config.allocation_strategy(pool.strategy());
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
    /// The instance slots the engine was built with.
    pub pool: pool::PoolSize,
}

impl WeftEngine {
    /// The process's engine with `limits`. The engine itself is shared by
    /// every service in the process (compiled code is tied to an engine, so
    /// sharing it lets them share compiled components too).
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        let (engine, pool) = shared_engine()?;
        let engine_hash = engine_hash(&engine);
        Ok(Self {
            engine,
            limits,
            engine_hash,
            pool,
        })
    }
}

/// One engine per process, built on first use with the slots
/// `WEFT_INSTANCE_SLOTS` asks for, and those slots.
pub fn shared_engine() -> wasmtime::Result<(Engine, pool::PoolSize)> {
    static ENGINE: std::sync::OnceLock<(Engine, pool::PoolSize)> = std::sync::OnceLock::new();
    if let Some(built) = ENGINE.get() {
        return Ok(built.clone());
    }
    let pool = pool::PoolSize::from_env().map_err(wasmtime::Error::msg)?;
    let engine = new_engine(pool)?;
    Ok(ENGINE.get_or_init(|| (engine, pool)).clone())
}
