//! Coverage-guided fuzz targets for everything Weft takes from outside:
//! the HTTP API, module uploads, Lambda events, event and callback
//! payloads, and the values a guest hands back across the WIT boundary.
//!
//! Each target is a `run(&[u8])` function here, so the same code serves
//! two drivers: libFuzzer (`scripts/fuzz`, `make fuzz`: binaries built
//! with coverage instrumentation, one per target in `fuzz_targets/`), and
//! the corpus replay in `tests/corpus.rs`, which `make test` runs over the
//! seeds and every input the fuzzer ever found (`regressions/`).
//!
//! A target panics when Weft breaks a promise it makes about bad input:
//! a panic, a 5xx, an answer that is not JSON, a refused module that was
//! stored anyway, a batch that reports messages it was never given.

pub mod guest_values;
pub mod lambda_event;
pub mod module_upload;
pub mod payloads;
pub mod router;
mod service;

/// A target: one execution on one input.
pub type Target = fn(&[u8]);

/// Every target by name, as the directories under `seeds/` and
/// `regressions/` are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("router", router::run),
    ("module_upload", module_upload::run),
    ("lambda_event", lambda_event::run),
    ("payloads", payloads::run),
    ("guest_values", guest_values::run),
];
