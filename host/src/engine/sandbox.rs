//! The WASI a guest sees.
//!
//! Workflows get a deterministic, capability-free WASI: no preopened
//! directories, no network, an empty environment and no arguments, stdin
//! closed, stdout/stderr captured, clocks that read the run's *logical* time,
//! and random numbers that are a function of the run and of the journal
//! position (see [`super::entropy`]). Whatever the guest does, it
//! sees the same world on every replay, and nothing of the host (files,
//! environment variables, AWS credentials) is reachable.
//!
//! RPC step functions run once per attempt and are not replayed, so they get
//! real clocks and real randomness, but otherwise the same closed box.

use super::entropy::{Entropy, Stream, seeded_rng};
use super::output::OutputCapture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// A run's logical time in milliseconds since the Unix epoch. Replay moves
/// it forward to each step's recorded completion time, so every read of the
/// clock returns the same value on every replay.
#[derive(Clone, Debug)]
pub struct LogicalClock {
    now_ms: Arc<AtomicU64>,
    origin_ms: u64,
}

impl LogicalClock {
    pub fn starting_at(ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(ms)),
            origin_ms: ms,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock to `ms` unless it is already later: logical time
    /// never runs backwards.
    pub fn advance_to(&self, ms: u64) {
        self.now_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

impl HostWallClock for LogicalClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

impl HostMonotonicClock for LogicalClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    /// Nanoseconds since the run started, in logical time.
    fn now(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.origin_ms)
            .saturating_mul(1_000_000)
    }
}

/// Builds the closed-box WASI context shared by both kinds of guest.
fn closed_box(stdout: &OutputCapture, stderr: &OutputCapture) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    // No `inherit_*`, no `env`, no `preopened_dir`: the guest starts with
    // nothing. Network access is denied outright.
    b.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    b
}

/// The WASI context of a workflow activation.
pub fn workflow_wasi(
    run_id: &str,
    entropy: &Entropy,
    clock: &LogicalClock,
    stdout: &OutputCapture,
    stderr: &OutputCapture,
) -> WasiCtx {
    let mut b = closed_box(stdout, stderr);
    let insecure_seed = {
        let mut rng = seeded_rng(run_id, "wasi-insecure-seed");
        let mut bytes = [0u8; 16];
        rand::Rng::fill_bytes(&mut rng, &mut bytes);
        u128::from_le_bytes(bytes)
    };
    b.wall_clock(clock.clone())
        .monotonic_clock(clock.clone())
        .secure_random(entropy.source(Stream::WasiSecure))
        .insecure_random(entropy.source(Stream::WasiInsecure))
        .insecure_random_seed(insecure_seed);
    b.build()
}

/// The WASI context of one RPC attempt.
pub fn rpc_wasi(stdout: &OutputCapture, stderr: &OutputCapture) -> WasiCtx {
    closed_box(stdout, stderr).build()
}
