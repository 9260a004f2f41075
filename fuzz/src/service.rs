//! The one service every execution of a target talks to, as requests to a
//! long-running server would: built once per process on an in-memory
//! embedded backend (so a million executions do not wait on fsync), with
//! the components the targets need deployed.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use weft::backend::Backends;
use weft::backend::sqlite::{Durability, EmbeddedOptions};
use weft::config::{Limits, RpcMode};
use weft::service::{Settings, Weft};

/// The runtime the targets block on: one thread, so an execution is one
/// sequence of events whatever the fuzzer's seed.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// The shared service, without a worker: a run advances only as far as
/// its first activation takes it, so a waiting run stays waiting however
/// many events the fuzzer sends it.
pub fn weft() -> Arc<Weft> {
    static SERVICE: OnceLock<(Arc<Weft>, tempfile::TempDir)> = OnceLock::new();
    Arc::clone(&SERVICE.get_or_init(build).0)
}

/// A service of its own for the payloads target: its runs must start in
/// process, which a service stops doing once its queue has a backlog, and
/// in the corpus test the other targets share [`weft`] and fill its queue.
pub fn weft_for_payloads() -> Arc<Weft> {
    static SERVICE: OnceLock<(Arc<Weft>, tempfile::TempDir)> = OnceLock::new();
    Arc::clone(&SERVICE.get_or_init(build).0)
}

/// A service on an in-memory embedded backend with the components the
/// targets use deployed.
fn build() -> (Arc<Weft>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let _guard = runtime().enter();
    let options = EmbeddedOptions {
        durability: Durability::Memory,
        ..EmbeddedOptions::default()
    };
    let backends = Backends::embedded(dir.path(), options).expect("the embedded backend");
    let limits = Limits::default();
    let mut settings = Settings::new(RpcMode::Inline, &limits);
    // A started run's first activation runs here, as on `weft dev`.
    settings.start_locally = true;
    let svc = Weft::new(backends, limits, settings).expect("the service");
    for (name, path) in [
        ("hello", artifact("examples", "hello")),
        ("expense-approval", artifact("examples", "expense-approval")),
        ("callback", artifact("test-guests", "callback")),
    ] {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build the components with `make guests`)",
                path.display()
            )
        });
        runtime()
            .block_on(svc.deploy(name, bytes))
            .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
    }
    (svc, dir)
}

/// A component built by `make guests`.
pub fn artifact(dir: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(dir)
        .join(format!("{name}.wasm"))
}
